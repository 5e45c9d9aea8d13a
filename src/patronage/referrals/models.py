"""Referral program settings, each customer's referral code, and referrals (referrer -> referred)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, Money, UTCDateTime


class ReferralProgram(WorkspaceScoped):
    """One row per workspace (absent: the defaults in schemas.ReferralProgramIn)."""

    __tablename__ = "referral_programs"
    __table_args__ = (Index("uq_referral_programs_ws", "workspace_id", unique=True),)

    active: Mapped[bool] = mapped_column(default=True)
    welcome_trigger: Mapped[str] = mapped_column(String(20), default="first_order")  # signup | first_order
    welcome_points: Mapped[int] = mapped_column(default=0)
    welcome_reward_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("rewards.id", ondelete="SET NULL"))
    referrer_points: Mapped[int] = mapped_column(default=0)
    referrer_reward_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("rewards.id", ondelete="SET NULL"))
    min_order_amount: Mapped[Decimal | None] = mapped_column(Money)
    max_per_day: Mapped[int | None] = mapped_column(default=5)
    max_per_week: Mapped[int | None] = mapped_column(default=20)
    hold_existing_customers: Mapped[bool] = mapped_column(default=True)
    # Where the referral landing page (/r/{code}) sends the friend to sign up or shop; ``ref=<code>`` is added.
    signup_url: Mapped[str | None] = mapped_column(String(500))


class ReferralCode(WorkspaceScoped):
    """Codes are unique across workspaces: the public link ``/r/{code}`` names no workspace."""

    __tablename__ = "referral_codes"
    __table_args__ = (
        Index("uq_referral_codes_code", "code", unique=True),
        Index("uq_referral_codes_ws_customer", "workspace_id", "customer_id", unique=True),
    )

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    invites_sent: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)
    # The referrer's own devices / addresses seen when they shared or used their code: {"ips": [...], ...}
    signals: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Referral(WorkspaceScoped):
    """pending -> converted (qualifying order) -> rewarded; or held (fraud checks) -> approved / rejected;
    converted or rewarded -> cancelled when the order is fully returned or cancelled."""

    __tablename__ = "referrals"
    __table_args__ = (
        Index("uq_referrals_ws_referred", "workspace_id", "referred_id", unique=True),
        Index("ix_referrals_ws_referrer_created", "workspace_id", "referrer_id", "created_at"),
        Index("ix_referrals_ws_status", "workspace_id", "status", "id"),
        Index("ix_referrals_ws_order", "workspace_id", "order_id"),
    )

    referrer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    referred_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    hold_reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    signals: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # the referred's ip/device/address
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime)
    order_id: Mapped[int | None] = mapped_column(BigId)
    order_placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reward_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    welcome_granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    referrer_rewarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(100))
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(500))
