"""Queries for tiers. Every query is scoped to one workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.customers.activity_repository import TimelineKey, before_clause
from patronage.customers.models import Customer
from patronage.kit.db import is_postgres
from patronage.kit.repository import WorkspaceRepository
from patronage.ledger.models import LedgerTransaction
from patronage.tiers.models import Tier, TierCredit, TierHistory, TierMembership, TierProgram
from patronage.tiers.rules import Ladder, Metric, TierRule
from patronage.workspaces.models import Workspace

TIMELINE_KIND = "tier"
_METRIC_COLUMN = {
    Metric.SPEND: TierCredit.spend,
    Metric.ORDERS: TierCredit.orders,
    Metric.POINTS_EARNED: TierCredit.points,
}


class ProgramRepository(WorkspaceRepository[TierProgram]):
    model = TierProgram

    def current(self) -> TierProgram | None:
        return self.session.scalars(self.select()).one_or_none()

    def with_workspace(self) -> Any | None:
        """The program's columns (None without a program row) and the workspace's time zone and currency,
        in one query; None when the workspace does not exist."""
        stmt = (
            select(TierProgram.metric, TierProgram.window, TierProgram.grace_days, TierProgram.downgrade_policy,
                   Workspace.timezone, Workspace.currency)
            .select_from(Workspace)
            .outerjoin(TierProgram, TierProgram.workspace_id == Workspace.id)
            .where(Workspace.id == self.workspace_id)
        )
        return self.session.execute(stmt).one_or_none()


class TierRepository(WorkspaceRepository[Tier]):
    model = Tier

    def list(self) -> list[Tier]:
        return list(self.session.scalars(self.select().order_by(Tier.threshold, Tier.id)))

    def by_name(self, name: str) -> Tier | None:
        return self.session.scalars(self.select().where(Tier.name == name)).one_or_none()

    def ladder(self) -> Ladder:
        # Three columns, not whole tiers: every evaluation reads the ladder, most find it empty.
        stmt = select(Tier.id, Tier.name, Tier.threshold).where(Tier.workspace_id == self.workspace_id)
        return Ladder(TierRule(i, n, t) for i, n, t in self.session.execute(stmt))

    def in_use(self, tier_id: int) -> bool:
        held = select(TierMembership.id).where(
            TierMembership.workspace_id == self.workspace_id,
            or_(
                TierMembership.tier_id == tier_id,
                TierMembership.earned_tier_id == tier_id,
                TierMembership.override_tier_id == tier_id,
            ),
        )
        logged = select(TierHistory.id).where(
            TierHistory.workspace_id == self.workspace_id,
            or_(TierHistory.from_tier_id == tier_id, TierHistory.to_tier_id == tier_id),
        )
        return bool(self.session.scalar(select(held.exists())) or self.session.scalar(select(logged.exists())))


class MembershipRepository(WorkspaceRepository[TierMembership]):
    model = TierMembership

    def for_customer(self, customer_id: int, *, for_update: bool = False) -> TierMembership | None:
        stmt = self.select().where(TierMembership.customer_id == customer_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def for_customers(self, customer_ids: Sequence[int], *, for_update: bool = False) -> dict[int, TierMembership]:
        """``for_customer`` for several customers in one query (locked in customer order)."""
        stmt = (
            self.select()
            .where(TierMembership.customer_id.in_(sorted(set(customer_ids))))
            .order_by(TierMembership.customer_id)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return {m.customer_id: m for m in self.session.scalars(stmt)}

    def due(self, now: datetime, limit: int = 500) -> list[int]:
        """Customers whose review, grace end or override end has come."""
        stmt = (
            select(TierMembership.customer_id)
            .where(
                TierMembership.workspace_id == self.workspace_id,
                or_(
                    (TierMembership.review_at <= now) & TierMembership.downgrade_at.is_(None),
                    TierMembership.downgrade_at <= now,
                    TierMembership.override_until <= now,
                ),
            )
            .order_by(TierMembership.customer_id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def repoint(self, from_customer_id: int, to_customer_id: int) -> None:
        """Merge: the duplicate's membership and history become the survivor's (who had none)."""
        for model in (TierMembership, TierHistory):
            self.session.execute(
                update(model)
                .where(model.workspace_id == self.workspace_id, model.customer_id == from_customer_id)
                .values(customer_id=to_customer_id)
                .execution_options(synchronize_session=False)
            )

    def counts(self) -> dict[int | None, int]:
        stmt = (
            select(TierMembership.tier_id, func.count())
            .where(TierMembership.workspace_id == self.workspace_id)
            .group_by(TierMembership.tier_id)
        )
        return {tier_id: int(n) for tier_id, n in self.session.execute(stmt)}


class HistoryRepository(WorkspaceRepository[TierHistory]):
    model = TierHistory

    def before(self, customer_id: int, cursor: TimelineKey | None, limit: int) -> list[TierHistory]:
        """Timeline page: newest first, strictly before ``cursor``."""
        stmt = (
            self.select()
            .where(TierHistory.customer_id == customer_id,
                   before_clause(TierHistory.at, TierHistory.id, TIMELINE_KIND, cursor))
            .order_by(TierHistory.at.desc(), TierHistory.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def for_customer(self, customer_id: int, limit: int = 50) -> list[TierHistory]:
        stmt = self.select().where(TierHistory.customer_id == customer_id).order_by(TierHistory.id.desc())
        return list(self.session.scalars(stmt.limit(limit)))


class CreditRepository(WorkspaceRepository[TierCredit]):
    model = TierCredit

    def add_once(self, **values: object) -> bool:
        """Insert a credit unless its (source_type, source_id) is already recorded; True when added."""
        dialect = postgresql if is_postgres(self.session) else sqlite
        stmt = (
            dialect.insert(TierCredit)
            .values(workspace_id=self.workspace_id, **values)
            .on_conflict_do_nothing(index_elements=["workspace_id", "source_type", "source_id"])
            .returning(TierCredit.id)
        )
        return self.session.execute(stmt).scalar_one_or_none() is not None

    def add_many_once(self, rows: list[dict[str, object]]) -> None:
        """``add_once`` for many credits (bulk imports): one INSERT ... ON CONFLICT DO NOTHING, executemany."""
        if not rows:
            return
        dialect = postgresql if is_postgres(self.session) else sqlite
        stmt = dialect.insert(TierCredit).on_conflict_do_nothing(
            index_elements=["workspace_id", "source_type", "source_id"])
        self.session.execute(stmt, [{"workspace_id": self.workspace_id, **r} for r in rows])

    def add_each_once(self, rows: Sequence[dict[str, object]]) -> list[Any]:
        """``add_once`` for several credits in one statement. Returns the rows actually added (source_type,
        source_id and the three metrics as stored); a source already recorded is left alone."""
        if not rows:
            return []
        dialect = postgresql if is_postgres(self.session) else sqlite
        table = cast(Table, TierCredit.__table__)
        c = table.c
        # An executemany on the Core table: SQLAlchemy sends it as one multi-row INSERT ... RETURNING with a
        # cached compiled form (``values([...])`` would be compiled anew on every call).
        stmt = (
            dialect.insert(table)
            .on_conflict_do_nothing(index_elements=["workspace_id", "source_type", "source_id"])
            .returning(c.source_type, c.source_id, c.spend, c.orders, c.points)
        )
        return list(self.session.execute(stmt, [{"workspace_id": self.workspace_id, **r} for r in rows]))

    def for_customer(self, customer_id: int) -> list[TierCredit]:
        stmt = self.select().where(TierCredit.customer_id == customer_id).order_by(TierCredit.id)
        return list(self.session.scalars(stmt))

    def for_order(self, order_id: int, source_type: str) -> list[TierCredit]:
        stmt = self.select().where(TierCredit.order_id == order_id, TierCredit.source_type == source_type)
        return list(self.session.scalars(stmt))

    def metric(self, customer_id: int, metric: Metric, start: datetime | None, end: datetime | None) -> Decimal:
        """The metric over [start, end); open bounds when None."""
        column = _METRIC_COLUMN[metric]
        stmt = select(func.coalesce(func.sum(column), 0)).where(
            TierCredit.workspace_id == self.workspace_id, TierCredit.customer_id == customer_id
        )
        if end is not None:
            stmt = stmt.where(TierCredit.occurred_at < end)
        if start is not None:
            stmt = stmt.where(TierCredit.occurred_at >= start)
        return Decimal(str(self.session.scalar(stmt) or 0))

    def metrics_of(
        self, customer_ids: Sequence[int], metric: Metric, start: datetime | None, end: datetime | None
    ) -> dict[int, Decimal]:
        """``metric`` for several customers in one grouped query; a customer without credit is absent."""
        column = _METRIC_COLUMN[metric]
        stmt = select(TierCredit.customer_id, func.sum(column)).where(
            TierCredit.workspace_id == self.workspace_id, TierCredit.customer_id.in_(sorted(set(customer_ids)))
        )
        if end is not None:
            stmt = stmt.where(TierCredit.occurred_at < end)
        if start is not None:
            stmt = stmt.where(TierCredit.occurred_at >= start)
        stmt = stmt.group_by(TierCredit.customer_id)
        return {int(cid): Decimal(str(v or 0)) for cid, v in self.session.execute(stmt)}

    def metrics_for_all(self, metric: Metric, start: datetime | None, end: datetime) -> dict[int, Decimal]:
        column = _METRIC_COLUMN[metric]
        stmt = select(TierCredit.customer_id, func.sum(column)).where(
            TierCredit.workspace_id == self.workspace_id, TierCredit.occurred_at < end
        )
        if start is not None:
            stmt = stmt.where(TierCredit.occurred_at >= start)
        stmt = stmt.group_by(TierCredit.customer_id)
        return {cid: Decimal(str(v or 0)) for cid, v in self.session.execute(stmt).all()}


def customer_exists(session: Session, workspace_id: int, customer_id: int) -> bool:
    stmt = select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.id == customer_id)
    return session.scalar(stmt) is not None


def ledger_transaction(session: Session, workspace_id: int, transaction_id: int) -> LedgerTransaction | None:
    """Read-only look-up of a ledger transaction (its date and what it reverses)."""
    stmt = select(LedgerTransaction).where(
        LedgerTransaction.workspace_id == workspace_id, LedgerTransaction.id == transaction_id
    )
    return session.scalars(stmt).one_or_none()


def ledger_transactions(session: Session, workspace_id: int, transaction_ids: Sequence[int]) -> dict[int, Any]:
    """What the tiers need of several ledger transactions (id, customer_id, source_type, source_id,
    occurred_at), in one query, by id."""
    t = LedgerTransaction
    stmt = select(t.id, t.customer_id, t.source_type, t.source_id, t.occurred_at).where(
        t.workspace_id == workspace_id, t.id.in_(sorted(set(transaction_ids)))
    )
    return {row.id: row for row in session.execute(stmt)}


def customer_count(session: Session, workspace_id: int) -> int:
    stmt = select(func.count()).select_from(Customer).where(
        Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None)
    )
    return int(session.scalar(stmt) or 0)


def history_mismatches(session: Session) -> list[tuple[int, int, int | None, int | None]]:
    """Memberships whose effective tier differs from the last history row: (ws, customer, tier, last_to)."""
    last = (
        select(TierHistory.workspace_id, TierHistory.customer_id, func.max(TierHistory.id).label("last_id"))
        .group_by(TierHistory.workspace_id, TierHistory.customer_id)
        .subquery()
    )
    stmt = (
        select(TierMembership.workspace_id, TierMembership.customer_id, TierMembership.tier_id, TierHistory.to_tier_id)
        .join(
            last,
            (last.c.workspace_id == TierMembership.workspace_id) & (last.c.customer_id == TierMembership.customer_id),
            isouter=True,
        )
        .join(TierHistory, TierHistory.id == last.c.last_id, isouter=True)
        .where(or_(TierHistory.id.is_(None), TierHistory.to_tier_id.is_distinct_from(TierMembership.tier_id)))
        .limit(100)
    )
    return [(w, c, t, h) for w, c, t, h in session.execute(stmt)]
