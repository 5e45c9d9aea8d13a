"""Dialect-specific bulk writes for ingestion: insert-or-ignore, id allocation and raw multi-row inserts.

The ORM and Core's ``insertmanyvalues`` cost tens of microseconds per row; an import of a million orders
cannot afford that. These helpers keep SQLAlchemy's own value conversion (each column's bind processor,
so a row written here reads back exactly like one written by the ORM) but hand the rows to the driver
in one call: ``executemany`` of one prepared INSERT on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL.

Errors surface as SQLAlchemy's ``IntegrityError`` / ``DBAPIError`` on both databases, so callers can
retry a chunk that lost a race without knowing the driver.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Dialect,
    Integer,
    Numeric,
    Row,
    Table,
    any_,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

from patronage.kit.types import UTCDateTime

Processor = Callable[[Any], Any]


def dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


def _sqlite_instant(value: datetime) -> str:
    # The text SQLAlchemy's SQLite DATETIME writes (always with microseconds, so text order is time order).
    if value.tzinfo is UTC:  # the usual case: drop the "+00:00" rather than build a naive copy
        return value.isoformat(" ", "microseconds")[:-6]
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; attach a timezone")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _pg_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; attach a timezone")
    return value


def _json_text(value: Any) -> str:
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value)


def _fast_processor(column_type: TypeEngine[Any], dialect: Dialect) -> Processor | bool | None:
    """A C-speed equivalent of SQLAlchemy's bind processing for the common column types; True: none."""
    impl = column_type.dialect_impl(dialect)
    if isinstance(column_type, UTCDateTime):
        return _sqlite_instant if dialect.name == "sqlite" else _pg_instant
    if isinstance(impl, JSON):
        return _json_text
    if dialect.name == "sqlite":
        if isinstance(impl, Numeric) and not isinstance(impl, Integer):
            return float
        if isinstance(impl, Boolean):
            return True  # sqlite3 stores True/False as 1/0 itself
    return None


def _processors(session: Session, table: Table, columns: Sequence[str]) -> list[tuple[int, Processor]]:
    dialect = session.get_bind().dialect
    found: list[tuple[int, Processor]] = []
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        fast = _fast_processor(column_type, dialect)
        if fast is True:
            continue
        processor = fast if fast else column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            found.append((index, processor))
    return found


def _converted(rows: Iterable[Sequence[Any]], processors: list[tuple[int, Processor]]) -> list[tuple[Any, ...]]:
    """The rows with ``processors`` applied, column by column (``map`` runs each at C speed)."""
    rows = list(rows)
    if not processors or not rows:
        return [tuple(row) for row in rows]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for index, processor in processors:
        column = columns[index]
        first = column[0]
        # One object throughout (``now``, a shared zero): convert once. Identity, not ``==``: equal values
        # may convert differently ({"n": 1} and {"n": 1.0} or {"b": True} and {"b": 1} as JSON).
        if first is not None and all(map(operator.is_, column, itertools.repeat(first))):
            columns[index] = [processor(first)] * len(column)
        elif None in column:
            columns[index] = [None if v is None else processor(v) for v in column]
        else:
            columns[index] = list(map(processor, column))
    return list(zip(*columns, strict=True))


def _pg_copy_instant(value: datetime) -> str:
    return _pg_instant(value).isoformat()


def _dialect(name: str) -> Dialect:
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql.psycopg import dialect as pg_dialect

        return pg_dialect()  # type: ignore[no-untyped-call]
    from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect

    return sqlite_dialect()


def row_encoder(dialect_name: str, table: Table, columns: Sequence[str]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function turning one row (``columns`` order) into what ``insert_rows(..., encoded=True)`` sends.

    Needs no connection, so another process can prepare rows (the import's reader): the values are
    plain ``str`` / ``int`` / ``float`` / ``bool``, cheap to pickle. SQLite gets what ``insert_rows``
    binds (plus bools as ints, which skip pysqlite's adapter look-up); PostgreSQL gets text for money
    and instants, which ``COPY`` parses exactly as it parses psycopg's own dumps of them.
    """
    dialect = _dialect(dialect_name)

    # The usual UTC instant without the general function's checks (isoformat ends "+00:00").
    def pg_instant(value: datetime) -> str:
        return value.isoformat() if value.tzinfo is UTC else _pg_copy_instant(value)

    processors: list[tuple[int, Processor]] = []
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        impl = column_type.dialect_impl(dialect)
        processor: Processor | bool | None
        if dialect.name == "postgresql" and isinstance(column_type, UTCDateTime):
            processor = pg_instant
        elif dialect.name == "sqlite" and isinstance(column_type, UTCDateTime):
            processor = _sqlite_instant
        elif dialect.name == "postgresql" and isinstance(impl, Numeric) and not isinstance(impl, Integer):
            processor = str
        elif dialect.name == "sqlite" and isinstance(impl, Boolean):
            processor = int
        else:
            processor = _fast_processor(column_type, dialect)
            if processor is None:
                processor = impl.bind_processor(dialect)
        if callable(processor):
            processors.append((index, processor))

    def encode(row: Sequence[Any]) -> tuple[Any, ...]:
        values = list(row)
        for index, convert in processors:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        return tuple(values)

    return encode


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, encoded: bool = False
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) in one driver call, inside the session's transaction.

    Columns left out take their server default (e.g. the id); Python-side defaults are not applied, so
    pass every column that has one. ``encoded``: the rows' values come from ``row_encoder`` (or are
    plain values every column takes as they are) and go to the driver unchanged.
    """
    if not rows:
        return
    converted = rows if encoded else _converted(rows, _processors(session, table, columns))
    names = ", ".join(f'"{c}"' for c in columns)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        raw: Any = connection.connection.dbapi_connection  # psycopg's Connection: COPY is not in DB-API
        sql = f'COPY "{table.name}" ({names}) FROM STDIN'
        try:
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for values in converted:
                    copy.write_row(values)
        except connection.dialect.loaded_dbapi.Error as exc:  # the driver's own: give callers SQLAlchemy's
            raise DBAPIError.instance(sql, None, exc, connection.dialect.loaded_dbapi.Error) from exc
        return
    marks = ", ".join("?" for _ in columns)
    # Table and column names come from the metadata, never from input.
    connection.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', converted)  # noqa: S608  # nosec B608


def execute_many(session: Session, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``stmt`` (an UPDATE/INSERT with ``bindparam``s) once per row in one driver ``executemany``.

    Core's executemany processes every parameter of every row through SQLAlchemy's bind machinery;
    here the statement is compiled once and values are converted with the same fast processors as
    ``insert_rows`` (binds the rows leave out take the statement's own values, e.g. a workspace id).
    A statement built once at import time (all its values as ``bindparam``s) is compiled once per
    dialect for the life of the process: on the order path the compiling cost more than the UPDATE.
    """
    if not rows:
        return
    connection = session.connection()
    compiled, names, processors = _prepared(stmt, connection.dialect)
    defaults = compiled.construct_params(dict(rows[0]))  # the first row fills the required binds
    params: list[Any] = []
    for row in rows:
        values = [row[n] if n in row else defaults[n] for n in names]
        for index, processor in enumerate(processors):
            if processor is not None and values[index] is not None:
                values[index] = processor(values[index])
        params.append(tuple(values) if compiled.positional else dict(zip(names, values, strict=True)))
    connection.exec_driver_sql(compiled.string, params)


@functools.lru_cache(maxsize=64)  # keeps its statements alive, so a cached one is never a recycled id
def _prepared(stmt: ClauseElement, dialect: Dialect) -> tuple[Any, list[str], list[Processor | None]]:
    """``stmt`` compiled for ``dialect``: (compiled, bind names in order, each bind's value processor)."""
    compiled: Any = stmt.compile(dialect=dialect)
    names: list[str] = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
    processors: list[Processor | None] = []
    for name in names:
        bind_type = compiled.binds[name].type
        fast = _fast_processor(bind_type, dialect)
        processors.append(None if fast is True else fast or bind_type.dialect_impl(dialect).bind_processor(dialect))
    return compiled, names, processors


# The sequence is resolved once, in a subquery the planner keeps (OFFSET 0): ``nextval(pg_get_serial_
# sequence(...))`` per row would look the name up in the catalog for every id, ten times the cost of the
# nextval calls themselves. Each id is still its own nextval, so concurrent sessions never share one.
_PG_NEXT_IDS = text(
    "SELECT nextval(s.seq) FROM (SELECT CAST(pg_get_serial_sequence(:table, 'id') AS regclass) AS seq OFFSET 0) s"
    " CROSS JOIN generate_series(1, :n)"
)


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, for rows inserted *right after* in this transaction.

    PostgreSQL draws them from the id sequence. SQLite has one writer at a time (the caller's
    transaction holds the write lock), so the next ids are max(id)+1...; nothing else may insert into
    ``table`` in this transaction between this call and the insert of the rows.
    """
    if count <= 0:
        return []
    if dialect_name(session) == "postgresql":
        return [int(v) for v in session.execute(_PG_NEXT_IDS, {"table": table.name, "n": count}).scalars()]
    top = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    start = int(top) + 1
    return list(range(start, start + count))


def matching_batches(
    session: Session, column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any], *, size: int = 500
) -> list[ColumnElement[bool]]:
    """Conditions that together match ``column`` against ``values``: one query per condition.

    PostgreSQL gets a single ``column = ANY(:array)``: one round trip and one plan whatever the count,
    where IN lists of ``size`` cost a round trip and a fresh plan each. SQLite has no arrays and a cap
    on bound parameters, so it keeps IN lists of ``size`` values.
    """
    unique = list(dict.fromkeys(values))
    if not unique:
        return []
    if dialect_name(session) == "postgresql":
        array = bindparam(None, unique, type_=postgresql.ARRAY(column.type))
        return [column == any_(array)]
    return [column.in_(unique[start : start + size]) for start in range(0, len(unique), size)]


def insert_with_ids(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """Allocate ids and insert ``rows`` with them; returns the ids in row order (``id`` is prepended)."""
    ids = allocate_ids(session, table, len(rows))
    insert_rows(session, table, ["id", *columns], [(i, *row) for i, row in zip(ids, rows, strict=True)])
    return ids


def insert_ignore(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
    conflict_where: ColumnElement[bool] | None = None,
    returning: Sequence[str] = (),
) -> list[Row[Any]]:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING [RETURNING ...]``: rows whose key exists are skipped.

    Returns the ``returning`` columns of the rows actually inserted (in no particular order).
    """
    if not rows:
        return []
    dialect = postgresql if dialect_name(session) == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict), index_where=conflict_where)
    if not returning:
        session.execute(stmt, list(rows))
        return []
    return list(session.execute(stmt.returning(*(table.c[c] for c in returning)), list(rows)).all())


def refresh_statistics(session: Session, tables: Sequence[Table]) -> None:
    """Let the planner see how big ``tables`` have grown (PostgreSQL ``ANALYZE``; SQLite needs none).

    A bulk load into tables the planner last saw empty gets sequential scans for its key look-ups, and
    its cost grows with the square of the rows; autovacuum catches up only after a while.
    """
    if dialect_name(session) != "postgresql":
        return
    for table in tables:
        session.execute(text(f'ANALYZE "{table.name}"'))
