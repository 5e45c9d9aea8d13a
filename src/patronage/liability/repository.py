"""Queries for liability reporting. Every query is workspace-scoped.

The ledger's tables are only read here: the ledger owns them (ledger/service.py). The one table this
domain writes is its own snapshots of the report (``SnapshotRepository``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from patronage.kit.repository import WorkspaceRepository
from patronage.ledger.models import (
    CUSTOMER_BUCKETS,
    LedgerEntry,
    LedgerTransaction,
    LotAllocation,
    PointAccount,
    PointLot,
)
from patronage.liability.models import LiabilitySnapshot
from patronage.liability.rules import AGE_BUCKETS

Basis = Literal["booked", "occurred"]


class LiabilityRepository:
    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id

    # ---- outstanding ---------------------------------------------------------------------------------------
    def open_points_by_age(self, as_of: datetime) -> list[tuple[int, bool, int]]:
        """(age bucket index, pending?, points) for every open lot, bucketed by earning date."""
        whens = []
        for i, bucket in enumerate(AGE_BUCKETS):
            if bucket.max_days is not None:
                whens.append((PointLot.earned_at > as_of - timedelta(days=bucket.max_days), i))
        lots = (
            select(
                case(*whens, else_=len(AGE_BUCKETS) - 1).label("bucket"),
                case((PointLot.released_at.is_(None), 1), else_=0).label("pending"),
                PointLot.remaining.label("remaining"),
            )
            .where(PointLot.workspace_id == self.workspace_id, PointLot.remaining > 0)
            .subquery()
        )
        # Grouping over a subquery: PostgreSQL does not see two CASEs with bound parameters as one.
        stmt = select(lots.c.bucket, lots.c.pending, func.sum(lots.c.remaining)).group_by(
            lots.c.bucket, lots.c.pending
        )
        return [(int(b), bool(p), int(n or 0)) for b, p, n in self.session.execute(stmt)]

    def open_points_expiring(self, as_of: datetime, within_days: int) -> int:
        stmt = select(func.coalesce(func.sum(PointLot.remaining), 0)).where(
            PointLot.workspace_id == self.workspace_id, PointLot.remaining > 0,
            PointLot.expires_at.is_not(None), PointLot.expires_at <= as_of + timedelta(days=within_days),
        )
        return int(self.session.scalar(stmt) or 0)

    def account_totals(self) -> dict[str, int]:
        """Cached bucket totals over all accounts: available, pending, clawback (<= 0), overdraft (<= 0)."""
        stmt = select(
            func.coalesce(func.sum(PointAccount.available), 0),
            func.coalesce(func.sum(PointAccount.pending), 0),
            func.coalesce(func.sum(PointAccount.clawback), 0),
            func.coalesce(func.sum(case((PointAccount.available < 0, PointAccount.available), else_=0)), 0),
        ).where(PointAccount.workspace_id == self.workspace_id)
        available, pending, clawback, overdraft = self.session.execute(stmt).one()
        return {"available": int(available), "pending": int(pending), "clawback": int(clawback),
                "overdraft": int(overdraft)}

    # ---- cohorts -------------------------------------------------------------------------------------------
    def lots(self) -> Iterator[tuple[int, datetime, int, int, str]]:
        """(lot id, earned at, amount, remaining, kind of the transaction that created it), streamed."""
        stmt = (
            select(PointLot.id, PointLot.earned_at, PointLot.amount, PointLot.remaining, LedgerTransaction.kind)
            .join(LedgerTransaction, LedgerTransaction.id == PointLot.transaction_id)
            .where(PointLot.workspace_id == self.workspace_id)
            .execution_options(yield_per=5000)
        )
        for row in self.session.execute(stmt):
            yield int(row[0]), row[1], int(row[2]), int(row[3]), str(row[4])

    def allocations_by_lot(self) -> Iterator[tuple[int, str, int]]:
        """(lot id, kind of the transaction that took from it, points taken), streamed."""
        stmt = (
            select(LotAllocation.lot_id, LedgerTransaction.kind, func.sum(LotAllocation.amount))
            .join(LedgerTransaction, LedgerTransaction.id == LotAllocation.transaction_id)
            .where(LotAllocation.workspace_id == self.workspace_id)
            .group_by(LotAllocation.lot_id, LedgerTransaction.kind)
            .execution_options(yield_per=5000)
        )
        for lot_id, kind, points in self.session.execute(stmt):
            yield int(lot_id), str(kind), int(points or 0)

    # ---- statements ----------------------------------------------------------------------------------------
    def _time(self, basis: Basis) -> InstrumentedAttribute[datetime]:
        return LedgerTransaction.created_at if basis == "booked" else LedgerTransaction.occurred_at

    def bucket_balances(self, before: datetime, basis: Basis) -> dict[str, int]:
        """Sum of the customer-bucket entries of transactions before ``before``, per bucket."""
        stmt = (
            select(LedgerEntry.account, func.sum(LedgerEntry.amount))
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(LedgerEntry.workspace_id == self.workspace_id, LedgerEntry.account.in_(CUSTOMER_BUCKETS),
                   self._time(basis) < before)
            .group_by(LedgerEntry.account)
        )
        out = dict.fromkeys(CUSTOMER_BUCKETS, 0)
        out.update({account: int(total or 0) for account, total in self.session.execute(stmt)})
        return out

    def points_by_kind(self, start: datetime, end: datetime, basis: Basis) -> dict[str, int]:
        """Net points per transaction kind in [start, end), from the transactions' own ``points``."""
        moment = self._time(basis)
        stmt = (
            select(LedgerTransaction.kind, func.sum(LedgerTransaction.points))
            .where(LedgerTransaction.workspace_id == self.workspace_id, moment >= start, moment < end)
            .group_by(LedgerTransaction.kind)
        )
        return {kind: int(total or 0) for kind, total in self.session.execute(stmt)}

    def bucket_movements(self, start: datetime, end: datetime, basis: Basis) -> dict[tuple[str, str], int]:
        """(kind, bucket) -> entries' sum in [start, end)."""
        moment = self._time(basis)
        stmt = (
            select(LedgerTransaction.kind, LedgerEntry.account, func.sum(LedgerEntry.amount))
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(LedgerEntry.workspace_id == self.workspace_id, LedgerEntry.account.in_(CUSTOMER_BUCKETS),
                   moment >= start, moment < end)
            .group_by(LedgerTransaction.kind, LedgerEntry.account)
        )
        return {(kind, account): int(total or 0) for kind, account, total in self.session.execute(stmt)}


class SnapshotRepository(WorkspaceRepository[LiabilitySnapshot]):
    model = LiabilitySnapshot

    def latest(self) -> LiabilitySnapshot | None:
        """The newest snapshot: one row read through the (workspace, day) index."""
        return self.session.scalars(self.select().order_by(LiabilitySnapshot.day.desc()).limit(1)).one_or_none()

    def of_day(self, day: date, *, for_update: bool = False) -> LiabilitySnapshot | None:
        stmt = self.select().where(LiabilitySnapshot.day == day)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()
