"""The points ledger: program settings, point accounts, transactions, entries, lots and lot allocations.

Double entry: every ``LedgerTransaction`` has ``LedgerEntry`` rows summing to zero. A customer's account
has three buckets (``available``, ``pending``, ``clawback``); the other side of each entry is a system
account (``system:issued``, ``system:redeemed``, ``system:expired``, ``system:reversed``,
``system:adjusted``, ``system:transfer``). Entries and transactions are append-only. ``PointAccount`` caches the bucket
balances (updated relatively, proven by ``patronage doctor``); ``PointLot`` tracks what of each earning
is still unspent, so spending can consume the soonest-expiring points first. See docs/ledger.md.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, Money, UTCDateTime

# Customer buckets and system accounts, as written in ``LedgerEntry.account``.
AVAILABLE = "available"
PENDING = "pending"
CLAWBACK = "clawback"
CUSTOMER_BUCKETS = (AVAILABLE, PENDING, CLAWBACK)
ISSUED = "system:issued"
REDEEMED = "system:redeemed"
EXPIRED = "system:expired"
REVERSED = "system:reversed"
ADJUSTED = "system:adjusted"
TRANSFERRED = "system:transfer"  # clearing account of customer merges; nets to zero
SYSTEM_ACCOUNTS = (ISSUED, REDEEMED, EXPIRED, REVERSED, ADJUSTED, TRANSFERRED)


def _workspace_fk() -> Mapped[int]:
    """``workspace_id`` without the plain index ``WorkspaceScoped`` adds: on these big append-only tables
    every query goes through a composite index that starts with it (or through the transaction id), and
    one index fewer per row keeps bulk posting fast."""
    return mapped_column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)


class TxKind:
    EARN = "earn"
    RELEASE = "release"  # pending -> available when the return window closes
    SPEND = "spend"
    EXPIRE = "expire"
    REVERSE = "reverse"
    ADJUST = "adjust"
    TRANSFER = "transfer"  # customer merge: points move to the survivor
    ALL = ("earn", "release", "spend", "expire", "reverse", "adjust", "transfer")


class LoyaltySettings(WorkspaceScoped):
    """The points program's settings, one row per workspace (absent: the defaults below)."""

    __tablename__ = "loyalty_settings"
    __table_args__ = (Index("uq_loyalty_settings_ws", "workspace_id", unique=True),)

    points_name: Mapped[str] = mapped_column(String(40), default="points")
    # Points earned from an order stay pending this many days (the return window), then become available.
    return_window_days: Mapped[int] = mapped_column(default=30)
    expiry_policy: Mapped[str] = mapped_column(String(20), default="never")
    expiry_months: Mapped[int] = mapped_column(default=12)
    expiry_period: Mapped[str] = mapped_column(String(10), default="year")  # end_of_period: month|quarter|year
    expiry_warning_days: Mapped[int] = mapped_column(default=30)
    # May a spend overdraw the available balance?
    allow_negative_balance: Mapped[bool] = mapped_column(default=False)
    # A reversal (return) of points already spent: negative_balance | claw_back | write_off.
    reversal_shortfall: Mapped[str] = mapped_column(String(20), default="claw_back")
    cost_per_point: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.01"))
    # Expected share of issued points never redeemed (0..1); None: no estimate.
    breakage_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 4))


class PointAccount(WorkspaceScoped):
    """A customer's points: cached bucket balances, equal by invariant to the sum of their entries."""

    __tablename__ = "point_accounts"
    __table_args__ = (Index("uq_point_accounts_ws_customer", "workspace_id", "customer_id", unique=True),)

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    available: Mapped[int] = mapped_column(default=0)
    pending: Mapped[int] = mapped_column(default=0)
    clawback: Mapped[int] = mapped_column(default=0)  # <= 0: points owed, repaid from future earnings
    lifetime_earned: Mapped[int] = mapped_column(default=0)
    lifetime_spent: Mapped[int] = mapped_column(default=0)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # after_inactivity expiry: the deadline a points.expiring_soon event was last sent for.
    inactivity_warned_for: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LedgerTransaction(WorkspaceScoped):
    """One change to a customer's points. Never updated or deleted; corrections are new transactions."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        Index(
            "uq_ledger_transactions_source",
            "workspace_id", "customer_id", "kind", "source_type", "source_id",
            unique=True,
        ),
        Index("ix_ledger_transactions_account", "account_id", "id"),
        Index("ix_ledger_transactions_ws_kind_time", "workspace_id", "kind", "occurred_at"),
    )

    workspace_id: Mapped[int] = _workspace_fk()
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("point_accounts.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(16))
    source_type: Mapped[str] = mapped_column(String(40))
    source_id: Mapped[str] = mapped_column(String(200))
    points: Mapped[int]  # net change of the customer's holdings (available + pending + clawback)
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(120))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reverses_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ledger_transactions.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class LedgerEntry(WorkspaceScoped):
    """One leg of a transaction. ``account_id`` is set for customer buckets, empty for system accounts."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account", "account_id", "account"),)

    workspace_id: Mapped[int] = _workspace_fk()
    transaction_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("point_accounts.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(24))
    amount: Mapped[int]


class PointLot(WorkspaceScoped):
    """Points from one earning, with what is left of them. Pending until ``released_at`` is set."""

    __tablename__ = "point_lots"
    __table_args__ = (
        Index("ix_point_lots_open", "account_id", "expires_at", sqlite_where=text("remaining > 0"),
              postgresql_where=text("remaining > 0")),
        Index("ix_point_lots_unreleased", "workspace_id", "available_at",
              sqlite_where=text("released_at IS NULL"), postgresql_where=text("released_at IS NULL")),
        Index("ix_point_lots_expiring", "workspace_id", "expires_at",
              sqlite_where=text("remaining > 0"), postgresql_where=text("remaining > 0")),
    )

    workspace_id: Mapped[int] = _workspace_fk()
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("point_accounts.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId)
    transaction_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int]
    remaining: Mapped[int]
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # points.expiring_soon sent


class LotAllocation(WorkspaceScoped):
    """How much of a lot one transaction took (spend, expiry, reversal, transfer). Append-only."""

    __tablename__ = "point_lot_allocations"

    workspace_id: Mapped[int] = _workspace_fk()
    lot_id: Mapped[int] = mapped_column(BigId, ForeignKey("point_lots.id", ondelete="CASCADE"), index=True)
    transaction_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("ledger_transactions.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int]
