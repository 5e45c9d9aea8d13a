"""Single-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING ...`` for the hot request paths.

A unique-key race on PostgreSQL aborts the whole transaction unless the INSERT runs in a savepoint (two
more round trips, every time, for a race that almost never happens). ``ON CONFLICT DO NOTHING`` waits for
a concurrent inserter of the same key instead and, once that one has committed, skips the row: the caller
gets ``None`` and reads the winner's row, the transaction intact. SQLite (3.35+) has the same syntax;
with one writer at a time it only ever meets committed rows.

An ``InsertOnce`` is built at import time and keeps one statement per dialect, so each call costs a hit
in SQLAlchemy's compiled cache and nothing more. ``returning`` may hold any expression, e.g. a scalar
subquery whose ``bindparam`` values travel with the row's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


class InsertOnce:
    def __init__(
        self,
        table: Table,
        *,
        conflict: Sequence[str],
        conflict_where: ColumnElement[bool] | None = None,
        returning: Sequence[ColumnElement[Any]] = (),
    ) -> None:
        self.table = table
        self.conflict = list(conflict)
        self.conflict_where = conflict_where
        self.returning = list(returning) or [table.c.id]
        self._statements: dict[str, Any] = {}

    def _statement(self, dialect: str) -> Any:
        found = self._statements.get(dialect)
        if found is None:
            module: Any = postgresql if dialect == "postgresql" else sqlite
            found = (
                module.insert(self.table)
                .on_conflict_do_nothing(index_elements=self.conflict, index_where=self.conflict_where)
                .returning(*self.returning)
            )
            self._statements[dialect] = found
        return found

    def __call__(self, session: Session, values: Mapping[str, Any]) -> Row[Any] | None:
        """Insert one row; its ``returning`` values, or None when the key was taken (nothing written).

        Columns left out of ``values`` take their defaults, as with any Core insert.
        """
        stmt = self._statement(session.get_bind().dialect.name)
        row: Row[Any] | None = session.execute(stmt, dict(values)).first()
        return row
