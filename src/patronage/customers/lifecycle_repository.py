"""Queries for the lifecycle stage history, scoped by workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update

from patronage.customers.activity_repository import TimelineKey, before_clause
from patronage.customers.models import StageHistory
from patronage.kit.clock import utcnow
from patronage.kit.repository import WorkspaceRepository
from patronage.kit.types import UTCDateTime
from patronage.kit.upsert import insert_rows


class StageHistoryRepository(WorkspaceRepository[StageHistory]):
    model = StageHistory

    def for_customer(self, customer_id: int) -> list[StageHistory]:
        stmt = (
            self.select()
            .where(StageHistory.customer_id == customer_id)
            .order_by(StageHistory.entered_at.desc(), StageHistory.id.desc())
        )
        return list(self.session.scalars(stmt))

    def before(self, customer_id: int, cursor: TimelineKey | None, limit: int) -> list[StageHistory]:
        stmt = (
            self.select()
            .where(
                StageHistory.customer_id == customer_id,
                before_clause(StageHistory.entered_at, StageHistory.id, "lifecycle", cursor),
            )
            .order_by(StageHistory.entered_at.desc(), StageHistory.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def insert_many(self, rows: Sequence[tuple[int, str, str | None, datetime, dict[str, Any]]]) -> None:
        """(customer id, stage, previous stage, entered at, reason) rows in one driver call (``kit.upsert``)."""
        if not rows:
            return
        now = utcnow()
        self.session.flush()  # a raw insert: the profiles it points to must be written first
        insert_rows(self.session, cast(Table, StageHistory.__table__), (
            "workspace_id", "customer_id", "stage", "previous_stage", "entered_at", "reason", "created_at",
            "updated_at"), [(self.workspace_id, cid, stage, previous, at, reason, now, now)
                            for cid, stage, previous, at, reason in rows])

    def close_open(self, customer_ids: Sequence[int], at: datetime) -> None:
        """Set ``exited_at`` on each customer's open row (executemany, in id order)."""
        if not customer_ids:
            return
        table: Any = StageHistory.__table__
        when = bindparam("b_at", type_=UTCDateTime())
        stmt = (
            update(table)
            .where(
                table.c.workspace_id == self.workspace_id,
                table.c.customer_id == bindparam("b_id"),
                table.c.exited_at.is_(None),
            )
            .values(exited_at=when, updated_at=when)
        )
        self.session.execute(stmt, [{"b_id": cid, "b_at": at} for cid in sorted(set(customer_ids))])
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, StageHistory) and obj.customer_id in customer_ids:
                self.session.expire(obj, ["exited_at", "updated_at"])
