"""Tier program settings, the tiers, each customer's membership, its history and the qualifying credits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, Money, UTCDateTime

Multiplier = Numeric(8, 4, asdecimal=True)


class TierProgram(WorkspaceScoped):
    """How tiers are earned in one workspace (one row per workspace; absent = defaults)."""

    __tablename__ = "tier_programs"
    __table_args__ = (Index("uq_tier_programs_ws", "workspace_id", unique=True),)

    metric: Mapped[str] = mapped_column(String(20), default="spend")  # rules.Metric
    window: Mapped[str] = mapped_column(String(20), default="calendar_year")  # rules.Window
    grace_days: Mapped[int] = mapped_column(default=30)
    downgrade_policy: Mapped[str] = mapped_column(String(20), default="drop_one")  # rules.DowngradePolicy


class Tier(WorkspaceScoped):
    __tablename__ = "tiers"
    __table_args__ = (Index("uq_tiers_ws_name", "workspace_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    threshold: Mapped[Decimal] = mapped_column(Money)  # in the program metric's unit
    earning_multiplier: Mapped[Decimal] = mapped_column(Multiplier, default=Decimal(1))
    perks: Mapped[list[str]] = mapped_column(JSONType, default=list)
    color: Mapped[str | None] = mapped_column(String(20))


class TierMembership(WorkspaceScoped):
    """A customer's tier. Absent = the ladder's base tier (threshold 0), if there is one.

    ``earned_tier_id`` is held by qualification and reviewed at ``review_at``; ``tier_id`` is the
    effective tier: the override while one is active, else the earned tier.
    """

    __tablename__ = "tier_memberships"
    __table_args__ = (Index("uq_tier_memberships_ws_customer", "workspace_id", "customer_id", unique=True),)

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    tier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tiers.id", ondelete="RESTRICT"), index=True)
    earned_tier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tiers.id", ondelete="RESTRICT"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the effective tier was entered
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the earned tier was entered/confirmed
    review_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    downgrade_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # set while in grace
    override_tier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tiers.id", ondelete="RESTRICT"))
    override_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    override_reason: Mapped[str | None] = mapped_column(String(500))


class TierHistory(WorkspaceScoped):
    """Append-only: one row per change of a customer's effective tier (exit ``from``, enter ``to``)."""

    __tablename__ = "tier_history"
    __table_args__ = (Index("ix_tier_history_ws_customer", "workspace_id", "customer_id", "id"),)

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    from_tier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tiers.id", ondelete="RESTRICT"))
    to_tier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tiers.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(String(30))  # qualified | downgrade | override | override_ended
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(120), default="system")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class TierCredit(WorkspaceScoped):
    """Tier-qualifying credit from one source: an order, points earned, or a return (negative).

    All three metrics are stored so the program's metric can change without re-reading history.
    ``occurred_at`` places the credit in a window: a return is dated at its order's ``placed_at``, so it
    takes back the credit from the period that the order counted in.
    """

    __tablename__ = "tier_credits"
    __table_args__ = (
        Index("uq_tier_credits_ws_source", "workspace_id", "source_type", "source_id", unique=True),
        Index("ix_tier_credits_ws_customer_at", "workspace_id", "customer_id", "occurred_at"),
        Index("ix_tier_credits_ws_order", "workspace_id", "order_id"),
    )

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    source_type: Mapped[str] = mapped_column(String(20))  # order | points | return
    source_id: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(BigId)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    spend: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    orders: Mapped[int] = mapped_column(default=0)
    points: Mapped[int] = mapped_column(default=0)
