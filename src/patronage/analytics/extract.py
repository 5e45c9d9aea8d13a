"""Extract: copy a workspace's operational rows into its DuckDB analytics store, incrementally.

Rows stream out of the operational database as Arrow record batches straight from ADBC (each SQLAlchemy
select compiled with literal values), are converted to the store's column types with Arrow compute, and
are upserted into DuckDB by primary key. Each chunk of ``extract_chunk_rows`` rows is one statement on an
autocommit, *read-only* connection (a SQLite ``mode=ro`` file under WAL; PostgreSQL
``default_transaction_read_only``): its own short transaction, so a refresh never blocks writers and never
pins an old snapshot for long. An in-memory SQLite database (no file ADBC could open) or one named by a
``file:`` URI is read through SQLAlchemy instead.

Incremental tables keep a watermark per table: the highest id copied and the newest ``updated_at`` seen.
A refresh copies (1) rows with a higher id and (2) rows with a lower id whose ``updated_at`` is later than
the watermark minus ``extract_overlap_minutes`` (changed rows, and rows whose insert committed after a
later id was already read). Hard deletes are not seen incrementally: ``full=True`` rebuilds the store
(the nightly job does so weekly, and a time-zone change forces it, as local days depend on it).

Small side tables (members, redemptions, segment members) are copied whole each time. Members and
redemptions come from other domains through :mod:`patronage.analytics.sources`. What is copied, table by
table and column by column, is declared in :mod:`patronage.analytics.store_tables`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import type_coerce
from sqlalchemy.engine import Connection, Dialect, Row
from sqlalchemy.types import NullType

from patronage.analytics.store_tables import (
    BOOL,
    DNUM,
    FLOAT,
    INT,
    SIDE_TABLES,
    TABLES,
    TEXT,
    TS,
    AnySelect,
    TableSpec,
)
from patronage.config import get_settings
from patronage.kit.db import Database

log = logging.getLogger("patronage.analytics.extract")
AnyRow = Row[*tuple[Any, ...]]

_META = "CREATE TABLE IF NOT EXISTS _meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
_SYNC = "CREATE TABLE IF NOT EXISTS _sync (name VARCHAR PRIMARY KEY, last_id BIGINT, max_updated_at TIMESTAMP)"


def open_store(path: str | None) -> duckdb.DuckDBPyConnection:
    """A workspace's analytics store (``None``: in memory), with its tables created."""
    if path is not None:
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(path or ":memory:")
    # Every query that needs an order says ORDER BY; without this, CREATE TABLE AS keeps whole
    # intermediate results in memory just to preserve the scan order.
    connection.execute("SET preserve_insertion_order = false")
    create_schema(connection)
    return connection


def create_schema(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(_META)
    connection.execute(_SYNC)
    for spec in (*TABLES, *SIDE_TABLES):
        connection.execute(spec.ddl())


def _drop_all(connection: duckdb.DuckDBPyConnection) -> None:
    for spec in (*TABLES, *SIDE_TABLES):
        connection.execute(f"DROP TABLE IF EXISTS {spec.name}")
    connection.execute("DROP TABLE IF EXISTS _sync")
    create_schema(connection)


# ---- Python rows -> Arrow --------------------------------------------------------------------------
def _to_arrow(spec: TableSpec, labels: Sequence[str], rows: Sequence[AnyRow], tz: str) -> pa.RecordBatch:
    position = {label: i for i, label in enumerate(labels)}
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in labels]
    arrays = [_array(list(columns[position[c.source or c.name]]), c.kind, tz) for c in spec.columns]
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in spec.columns])


def _array(values: list[Any], kind: str, tz: str) -> pa.Array:
    """Raw driver values (see :func:`_raw`) -> one Arrow column, converted in bulk, not value by value."""
    if kind == FLOAT:
        if any(isinstance(v, Decimal) for v in values):  # PostgreSQL NUMERIC: exact, then to double
            return pa.array(values, pa.decimal128(38, 10)).cast(pa.float64())
        # SQLite keeps money as REAL: round to the Money scale, as SQLAlchemy's Numeric does when reading.
        return pc.round(pa.array(values, pa.float64()), 4)
    if kind in (TS, DNUM):
        utc = _utc(values)
        if kind == TS:
            return utc.cast(pa.timestamp("us"))  # naive UTC in the store
        local = pc.local_timestamp(utc.cast(pa.timestamp("us", tz=tz)))
        return local.cast(pa.date32()).cast(pa.int32())
    if kind == BOOL:
        return pa.array([None if v is None else bool(v) for v in values], pa.bool_())  # SQLite: 0/1
    return pa.array(values, {INT: pa.int64(), TEXT: pa.string()}[kind])


def _utc(values: list[Any]) -> pa.Array:
    """Timestamps as UTC: SQLite hands back naive-UTC ISO text, PostgreSQL aware datetimes."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, str):
        try:
            return pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:  # text not written by SQLAlchemy (an offset, say): parse value by value
            values = [None if v is None else datetime.fromisoformat(v) for v in values]
            return pa.array([_aware(v) for v in values], pa.timestamp("us", tz="UTC"))
    if sample is None or isinstance(sample, datetime):
        return pa.array(values, pa.timestamp("us", tz="UTC"))  # naive values are read as UTC
    return pa.array([_aware(v) for v in values], pa.timestamp("us", tz="UTC"))  # dates


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):  # a date column
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ---- reading the operational database ---------------------------------------------------------------
def _read_connection(db: Database) -> Connection:
    connection = db.read_engine.connect()
    if db.read_engine.dialect.name == "postgresql":
        connection = connection.execution_options(postgresql_readonly=True)
    return connection


def _raw(stmt: AnySelect) -> AnySelect:
    """``stmt`` returning the driver's own values: no per-value result processing (Decimal, datetime
    parsing) in Python; :func:`_array` converts whole columns at once instead."""
    return stmt.with_only_columns(
        *(type_coerce(c, NullType()).label(c.name) for c in stmt.selected_columns), maintain_column_froms=True
    )


def _chunks(db: Database, stmt: AnySelect, chunk: int) -> Iterator[tuple[list[str], Sequence[AnyRow]]]:
    """Run ``stmt`` in one read-only transaction, yielding ``yield_per`` partitions of raw rows."""
    with _read_connection(db) as connection:
        result = connection.execution_options(yield_per=chunk).execute(_raw(stmt))
        labels = list(result.keys())
        for part in result.partitions():
            yield labels, part


# ---- ADBC: Arrow record batches straight from the database ------------------------------------------
# ADBC's SQLite driver infers each column's Arrow type from the values of the first batch and fails on a
# later batch that disagrees (a column NULL throughout the first batch is taken as int64). So every SQLite
# select starts with one typed sentinel row (dropped again) and casts each column to one storage class:
# REAL money then also stays double when a batch happens to hold only whole amounts.
_SENTINEL = {INT: "0", FLOAT: "0.5", TEXT: "''", BOOL: "0", TS: "'1970-01-01 00:00:00'", DNUM: "'1970-01-01 00:00:00'"}
_STORAGE = {INT: "INTEGER", FLOAT: "REAL", TEXT: "TEXT", BOOL: "INTEGER", TS: "TEXT", DNUM: "TEXT"}
_MARK = "__sentinel"
_SQLITE_BATCH_ROWS = 50_000  # the default 1,024 would mean a Python-level cast and DuckDB insert per 1,024 rows


def _adbc_uri(db: Database) -> tuple[str, str] | None:
    """(driver, URI) for ADBC; None for an in-memory SQLite database (another connection's memory, which
    ADBC cannot open) or a ``file:`` URI, both left to SQLAlchemy."""
    url = db.read_engine.url
    if url.get_backend_name() == "sqlite":
        path = url.database
        if path in (None, "", ":memory:") or str(path).startswith("file:"):
            return None
        return "sqlite", f"file:{quote(str(path))}?mode=ro"
    return "postgresql", url.set(drivername="postgresql").render_as_string(hide_password=False)  # libpq's URI


def _sql(spec: TableSpec, stmt: AnySelect, dialect: Dialect) -> str:
    # Literal values only: ints, timestamps and fixed strings from our own selects, quoted by SQLAlchemy.
    body = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name != "sqlite":
        return body
    labels = {c.source or c.name: c.kind for c in spec.columns}
    sentinel = ", ".join(f'{_SENTINEL[kind]} AS "{label}"' for label, kind in labels.items())
    typed = ", ".join(f'CAST(q."{label}" AS {_STORAGE[kind]}) AS "{label}"' for label, kind in labels.items())
    # SQLite runs the arms of UNION ALL in order: the sentinel is the first row read. Only our own select
    # and column labels go into the text.
    return f"SELECT 1 AS {_MARK}, {sentinel} UNION ALL SELECT 0, {typed} FROM ({body}) AS q"  # noqa: S608  # nosec B608


class _ArrowReader:
    """One ADBC connection for a whole extract; every select is its own autocommit (short) transaction."""

    def __init__(self, driver: str, uri: str, dialect: Dialect) -> None:
        self.dialect = dialect
        self.sqlite = driver == "sqlite"
        if self.sqlite:
            import adbc_driver_sqlite.dbapi as adbc_sqlite

            self.connection: Any = adbc_sqlite.connect(uri, autocommit=True)
            # As the application's own connections: wait for a lock (WAL recovery after a crash, a
            # checkpoint) instead of failing at once with SQLITE_BUSY.
            with self.connection.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {int(get_settings().sqlite_busy_timeout_ms)}")
        else:
            import adbc_driver_postgresql.dbapi as adbc_pg

            self.connection = adbc_pg.connect(uri, autocommit=True)
            with self.connection.cursor() as cursor:
                cursor.execute("SET default_transaction_read_only = on")

    def close(self) -> None:
        self.connection.close()

    def batches(self, spec: TableSpec, stmt: AnySelect, tz: str) -> Iterator[pa.RecordBatch]:
        with self.connection.cursor() as cursor:
            if self.sqlite:
                cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(_SQLITE_BATCH_ROWS)})
            cursor.execute(_sql(spec, stmt, self.dialect))
            first = self.sqlite
            for raw in cursor.fetch_record_batch():  # streamed: one batch in memory at a time
                batch = raw
                if first:
                    if batch.num_rows == 0 or batch.column(_MARK)[0].as_py() != 1:
                        raise RuntimeError("ADBC SQLite: the type sentinel was not the first row")
                    batch, first = batch.slice(1), False
                if batch.num_rows:
                    yield _convert(spec, batch, tz)


def _convert(spec: TableSpec, batch: pa.RecordBatch, tz: str) -> pa.RecordBatch:
    arrays = [_cast(batch.column(c.source or c.name), c.kind, tz) for c in spec.columns]
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in spec.columns])


def _cast(values: pa.Array, kind: str, tz: str) -> pa.Array:
    """One column as ADBC hands it over -> the store's type; the same results as :func:`_array`."""
    if isinstance(values, pa.ExtensionArray):  # PostgreSQL NUMERIC: opaque type over its exact text
        values = values.storage
    if kind == FLOAT:
        if pa.types.is_string(values.type) or pa.types.is_decimal(values.type):
            return values.cast(pa.decimal128(38, 10)).cast(pa.float64())  # exact, then to double
        return pc.round(values.cast(pa.float64()), 4)  # SQLite REAL money, rounded to the Money scale
    if kind in (TS, DNUM):
        utc = _utc_arrow(values)
        if kind == TS:
            return utc.cast(pa.timestamp("us"))
        local = pc.local_timestamp(utc.cast(pa.timestamp("us", tz=tz)))
        return local.cast(pa.date32()).cast(pa.int32())
    return values.cast({INT: pa.int64(), TEXT: pa.string(), BOOL: pa.bool_()}[kind])  # SQLite 0/1 -> bool


def _utc_arrow(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        try:  # SQLite text as SQLAlchemy writes it: naive UTC, with or without fractional seconds
            return values.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:  # an offset, say: parse value by value
            return _utc(values.to_pylist())
    if pa.types.is_timestamp(values.type) and values.type.tz is None:
        return values.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))  # naive means UTC
    return values.cast(pa.timestamp("us", tz="UTC"))  # aware (PostgreSQL timestamptz), all-NULL, dates


class _RowReader:
    """The SQLAlchemy path, for an in-memory SQLite database: raw rows converted by :func:`_to_arrow`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def close(self) -> None:
        pass

    def batches(self, spec: TableSpec, stmt: AnySelect, tz: str) -> Iterator[pa.RecordBatch]:
        for labels, rows in _chunks(self.db, stmt, 50_000):
            yield _to_arrow(spec, labels, rows, tz)


Reader = _ArrowReader | _RowReader


@contextmanager
def _reader(db: Database) -> Iterator[Reader]:
    target = _adbc_uri(db)
    reader: Reader = _RowReader(db) if target is None else _ArrowReader(*target, db.read_engine.dialect)
    try:
        yield reader
    finally:
        reader.close()


@dataclass
class ExtractStats:
    rows: dict[str, int]
    full: bool


def _upsert(store: duckdb.DuckDBPyConnection, spec: TableSpec, batch: pa.RecordBatch, *, fresh: bool = False) -> None:
    """Insert ``batch``, replacing rows with the same key; ``fresh``: the keys are known to be new (a
    rebuild reads each row once), so the plain insert skips the per-row conflict check."""
    names = ", ".join(c.name for c in spec.columns)
    verb = "INSERT" if fresh else "INSERT OR REPLACE"
    store.register("__batch", pa.Table.from_batches([batch]))
    try:
        store.execute(f"{verb} INTO {spec.name} ({names}) SELECT {names} FROM __batch")  # noqa: S608
    finally:
        store.unregister("__batch")


def _copy_incremental(
    reader: Reader,
    store: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    workspace_id: int,
    *,
    tz: str,
    chunk: int,
    overlap: timedelta,
) -> int:
    found = store.execute("SELECT last_id, max_updated_at FROM _sync WHERE name = ?", [spec.name]).fetchall()
    row = found[0] if found else None
    last_id: int = row[0] if row else 0
    watermark: datetime | None = row[1].replace(tzinfo=UTC) if row and row[1] is not None else None
    base = spec.build(workspace_id)
    copied = 0
    new_max_id, new_max_updated = last_id, watermark
    passes: list[tuple[int, int | None, Any]] = [(last_id, None, None)]
    if watermark is not None and last_id > 0:
        passes.insert(0, (0, last_id, spec.updated_column > watermark - overlap))
    for start, stop, extra in passes:
        cursor = start
        while True:
            stmt = base.where(spec.id_column > cursor)
            if stop is not None:
                stmt = stmt.where(spec.id_column <= stop)
            if extra is not None:
                stmt = stmt.where(extra)
            stmt = stmt.order_by(spec.id_column).limit(chunk)
            got = 0
            for batch in reader.batches(spec, stmt, tz):
                _upsert(store, spec, batch, fresh=last_id == 0)
                got += batch.num_rows
                cursor = max(cursor, int(pc.max(batch.column(0)).as_py()))  # row order is not relied on
                batch_max = pc.max(batch.column(1)).as_py()  # naive UTC, as stored
                if batch_max is not None:
                    batch_max = batch_max.replace(tzinfo=UTC)
                    new_max_updated = batch_max if new_max_updated is None else max(new_max_updated, batch_max)
            copied += got
            new_max_id = max(new_max_id, cursor)
            if got < chunk:
                break
    store.execute(
        "INSERT OR REPLACE INTO _sync VALUES (?, ?, ?)",
        [spec.name, new_max_id, new_max_updated.astimezone(UTC).replace(tzinfo=None) if new_max_updated else None],
    )
    return copied


def _copy_whole(
    reader: Reader, store: duckdb.DuckDBPyConnection, spec: TableSpec, workspace_id: int, *, tz: str
) -> int:
    store.execute(f"DELETE FROM {spec.name}")  # noqa: S608 - an internal table name
    copied = 0
    for batch in reader.batches(spec, spec.build(workspace_id), tz):
        _upsert(store, spec, batch)
        copied += batch.num_rows
    return copied


def extract(
    db: Database,
    store: duckdb.DuckDBPyConnection,
    workspace_id: int,
    timezone: str,
    *,
    full: bool = False,
    chunk_rows: int = 100_000,
    overlap: timedelta = timedelta(minutes=10),
) -> ExtractStats:
    """Bring ``store`` up to date with the workspace's operational rows; returns rows copied per table."""
    create_schema(store)
    rows = store.execute("SELECT value FROM _meta WHERE key = 'timezone'").fetchall()
    row = rows[0] if rows else None
    if row is not None and row[0] != timezone:
        full = True  # local days moved: every day number must be recomputed
    if full:
        _drop_all(store)
    copied: dict[str, int] = {}
    store.execute("BEGIN TRANSACTION")
    try:
        with _reader(db) as reader:
            for spec in TABLES:
                copied[spec.name] = _copy_incremental(
                    reader, store, spec, workspace_id, tz=timezone, chunk=chunk_rows, overlap=overlap
                )
            for spec in SIDE_TABLES:
                copied[spec.name] = _copy_whole(reader, store, spec, workspace_id, tz=timezone)
        store.execute("INSERT OR REPLACE INTO _meta VALUES ('timezone', ?)", [timezone])
        store.execute("COMMIT")
    except BaseException:
        store.execute("ROLLBACK")
        raise
    log.info("analytics extract", extra={"workspace_id": workspace_id, "rows": copied, "full": full})
    return ExtractStats(copied, full)
