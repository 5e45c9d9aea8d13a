"""Every ledger query, scoped to one workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.kit.clock import utcnow
from patronage.kit.pagination import paginate_by_id
from patronage.kit.upsert import insert_ignore
from patronage.ledger.models import (
    LedgerEntry,
    LedgerTransaction,
    LotAllocation,
    PointAccount,
    PointLot,
    TxKind,
)

ACCOUNTS: Table = PointAccount.__table__  # type: ignore[assignment]


class LedgerRepository:
    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id

    # ---- accounts ------------------------------------------------------------------------------
    def account(self, customer_id: int, *, for_update: bool = False) -> PointAccount | None:
        stmt = select(PointAccount).where(
            PointAccount.workspace_id == self.workspace_id, PointAccount.customer_id == customer_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def customer_exists(self, customer_id: int) -> bool:
        stmt = select(Customer.id).where(Customer.workspace_id == self.workspace_id, Customer.id == customer_id)
        return self.session.execute(stmt).first() is not None

    def create_account(self, customer_id: int) -> bool:
        """Insert the account (``ON CONFLICT DO NOTHING``); False when a concurrent transaction created it."""
        now = utcnow()
        created = insert_ignore(self.session, ACCOUNTS, [{
            "workspace_id": self.workspace_id, "customer_id": customer_id, "available": 0, "pending": 0,
            "clawback": 0, "lifetime_earned": 0, "lifetime_spent": 0, "created_at": now, "updated_at": now,
        }], conflict=("workspace_id", "customer_id"), returning=("id",))
        return bool(created)

    def bump(self, account: PointAccount, deltas: dict[str, int], **values: Any) -> None:
        """Relative update of the cached counters (``x = x + d``); the object gets the new values."""
        changes: dict[str, Any] = {
            name: getattr(PointAccount, name) + delta for name, delta in deltas.items() if delta
        }
        changes.update(values)
        if not changes:
            return
        cols = [getattr(PointAccount, name) for name in changes]
        stmt = (
            update(PointAccount)
            .where(PointAccount.id == account.id, PointAccount.workspace_id == self.workspace_id)
            .values(**changes)
            .returning(*cols)
            .execution_options(synchronize_session=False)
        )
        row = self.session.execute(stmt).one()
        from sqlalchemy.orm.attributes import set_committed_value

        for name, value in zip(changes, row, strict=True):
            set_committed_value(account, name, value)

    # ---- transactions ----------------------------------------------------------------------------
    def find_transaction(
        self, customer_id: int, kind: str, source_type: str, source_id: str
    ) -> LedgerTransaction | None:
        stmt = select(LedgerTransaction).where(
            LedgerTransaction.workspace_id == self.workspace_id,
            LedgerTransaction.customer_id == customer_id,
            LedgerTransaction.kind == kind,
            LedgerTransaction.source_type == source_type,
            LedgerTransaction.source_id == source_id,
        )
        return self.session.scalars(stmt).one_or_none()

    def transactions_of_source(
        self, customer_id: int, kinds: Sequence[str], source_type: str, source_id: str
    ) -> list[LedgerTransaction]:
        stmt = select(LedgerTransaction).where(
            LedgerTransaction.workspace_id == self.workspace_id,
            LedgerTransaction.customer_id == customer_id,
            LedgerTransaction.kind.in_(kinds),
            LedgerTransaction.source_type == source_type,
            LedgerTransaction.source_id == source_id,
        ).order_by(LedgerTransaction.id)
        return list(self.session.scalars(stmt))

    def reversals_of(self, transaction_id: int) -> list[LedgerTransaction]:
        stmt = select(LedgerTransaction).where(
            LedgerTransaction.workspace_id == self.workspace_id,
            LedgerTransaction.reverses_id == transaction_id,
        ).order_by(LedgerTransaction.id)
        return list(self.session.scalars(stmt))

    def transaction(self, transaction_id: int) -> LedgerTransaction | None:
        stmt = select(LedgerTransaction).where(
            LedgerTransaction.workspace_id == self.workspace_id, LedgerTransaction.id == transaction_id
        )
        return self.session.scalars(stmt).one_or_none()

    def history(
        self, account_id: int, *, kind: str | None, cursor: str | None, limit: int | None
    ) -> tuple[list[LedgerTransaction], str | None]:
        stmt = select(LedgerTransaction).where(
            LedgerTransaction.workspace_id == self.workspace_id, LedgerTransaction.account_id == account_id
        )
        if kind:
            stmt = stmt.where(LedgerTransaction.kind == kind)
        return paginate_by_id(self.session, stmt, LedgerTransaction.id, cursor=cursor, limit=limit)

    def entries_of(self, transaction_ids: Sequence[int]) -> list[LedgerEntry]:
        if not transaction_ids:
            return []
        stmt = select(LedgerEntry).where(
            LedgerEntry.workspace_id == self.workspace_id, LedgerEntry.transaction_id.in_(transaction_ids)
        ).order_by(LedgerEntry.id)
        return list(self.session.scalars(stmt))

    def totals_by_kind(self, account_id: int) -> dict[str, tuple[int, int]]:
        """Per transaction kind: (sum of negative points, sum of positive points)."""
        points = LedgerTransaction.points
        stmt = (
            select(
                LedgerTransaction.kind,
                func.coalesce(func.sum(case((points < 0, points), else_=0)), 0),
                func.coalesce(func.sum(case((points > 0, points), else_=0)), 0),
            )
            .where(LedgerTransaction.workspace_id == self.workspace_id, LedgerTransaction.account_id == account_id)
            .group_by(LedgerTransaction.kind)
        )
        return {kind: (int(neg), int(pos)) for kind, neg, pos in self.session.execute(stmt)}

    # ---- lots --------------------------------------------------------------------------------------
    def open_lots(self, account_id: int) -> list[PointLot]:
        stmt = select(PointLot).where(
            PointLot.workspace_id == self.workspace_id, PointLot.account_id == account_id, PointLot.remaining > 0
        ).order_by(PointLot.id)
        return list(self.session.scalars(stmt))

    def lots_of_transaction(self, transaction_id: int) -> list[PointLot]:
        stmt = select(PointLot).where(
            PointLot.workspace_id == self.workspace_id, PointLot.transaction_id == transaction_id
        ).order_by(PointLot.id)
        return list(self.session.scalars(stmt))

    def lots(
        self, account_id: int, *, open_only: bool, cursor: str | None, limit: int | None
    ) -> tuple[list[PointLot], str | None]:
        stmt = select(PointLot).where(PointLot.workspace_id == self.workspace_id, PointLot.account_id == account_id)
        if open_only:
            stmt = stmt.where(PointLot.remaining > 0)
        return paginate_by_id(self.session, stmt, PointLot.id, cursor=cursor, limit=limit)

    def allocations_of(self, transaction_id: int) -> list[tuple[LotAllocation, PointLot]]:
        stmt = (
            select(LotAllocation, PointLot)
            .join(PointLot, PointLot.id == LotAllocation.lot_id)
            .where(LotAllocation.workspace_id == self.workspace_id, LotAllocation.transaction_id == transaction_id)
            .order_by(LotAllocation.id)
        )
        return [(a, lot) for a, lot in self.session.execute(stmt)]

    def expired_from(self, lot_ids: Sequence[int]) -> int:
        """Points expiry transactions took from these lots."""
        if not lot_ids:
            return 0
        stmt = (
            select(func.coalesce(func.sum(LotAllocation.amount), 0))
            .join(LedgerTransaction, LedgerTransaction.id == LotAllocation.transaction_id)
            .where(LotAllocation.workspace_id == self.workspace_id, LotAllocation.lot_id.in_(lot_ids),
                   LedgerTransaction.kind == TxKind.EXPIRE)
        )
        return int(self.session.scalar(stmt) or 0)

    def customers_with_due_releases(self, now: datetime, limit: int) -> list[int]:
        stmt = (
            select(PointLot.customer_id)
            .where(PointLot.workspace_id == self.workspace_id, PointLot.released_at.is_(None),
                   PointLot.available_at <= now)
            .distinct()
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def customers_with_due_expiry(self, now: datetime, limit: int) -> list[int]:
        stmt = (
            select(PointLot.customer_id)
            .where(PointLot.workspace_id == self.workspace_id, PointLot.remaining > 0,
                   PointLot.expires_at <= now)
            .distinct()
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def customers_inactive_before(self, cutoff: datetime, limit: int) -> list[tuple[int, datetime]]:
        """(customer, last activity) of accounts holding points, inactive since before ``cutoff``."""
        stmt = (
            select(PointAccount.customer_id, PointAccount.last_activity_at)
            .where(PointAccount.workspace_id == self.workspace_id, PointAccount.last_activity_at < cutoff,
                   (PointAccount.available > 0) | (PointAccount.pending > 0))
            .order_by(PointAccount.last_activity_at)
            .limit(limit)
        )
        return [(c, at) for c, at in self.session.execute(stmt) if at is not None]

    def lots_to_warn(self, now: datetime, horizon: datetime) -> list[PointLot]:
        stmt = select(PointLot).where(
            PointLot.workspace_id == self.workspace_id, PointLot.remaining > 0, PointLot.warned_at.is_(None),
            PointLot.expires_at > now, PointLot.expires_at <= horizon,
        ).order_by(PointLot.customer_id, PointLot.expires_at)
        return list(self.session.scalars(stmt))

    def accounts_to_warn_inactive(self, lo: datetime, hi: datetime) -> list[PointAccount]:
        """after_inactivity: accounts whose last activity falls in [lo, hi) and that hold points."""
        stmt = select(PointAccount).where(
            PointAccount.workspace_id == self.workspace_id,
            PointAccount.last_activity_at >= lo, PointAccount.last_activity_at < hi,
            (PointAccount.available > 0) | (PointAccount.pending > 0),
        )
        return list(self.session.scalars(stmt))

    def mark_warned(self, lot_ids: Sequence[int], at: datetime) -> None:
        if lot_ids:
            self.session.execute(
                update(PointLot)
                .where(PointLot.workspace_id == self.workspace_id, PointLot.id.in_(lot_ids))
                .values(warned_at=at)
                .execution_options(synchronize_session=False)
            )
