"""The reward catalog, redemptions, coupons (from rewards and promotions), their uses, and fulfilments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, Money, UTCDateTime


class Reward(WorkspaceScoped):
    """Something points buy. ``stock`` None = unlimited; decremented relatively, never below 0."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        Index("ix_rewards_ws_active", "workspace_id", "active", "points_cost"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(4000), default="")
    image_url: Mapped[str | None] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(30))  # rules.RewardKind
    points_cost: Mapped[int]
    value: Mapped[Decimal | None] = mapped_column(Money)  # money off, or percent off
    currency: Mapped[str | None] = mapped_column(String(3))  # fixed discounts
    sku: Mapped[str | None] = mapped_column(String(100))  # free products
    min_order_amount: Mapped[Decimal | None] = mapped_column(Money)
    tier_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)  # empty = every tier
    segment_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)  # empty = everybody
    stock: Mapped[int | None]
    redeemed_count: Mapped[int] = mapped_column(default=0)
    per_customer_limit: Mapped[int | None]
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    coupon_valid_days: Mapped[int | None]  # a redeemed coupon expires this many days later (None: never)
    expired_coupon_policy: Mapped[str] = mapped_column(String(10), default="forfeit")  # forfeit | refund
    active: Mapped[bool] = mapped_column(default=True)


class Redemption(WorkspaceScoped):
    """A customer obtained a reward (for points, or granted by a referral or staff).

    ``(customer_id, source_type, source_id)`` is unique: the idempotency key of the redemption.
    """

    __tablename__ = "reward_redemptions"
    __table_args__ = (
        Index("uq_reward_redemptions_source", "workspace_id", "customer_id", "source_type", "source_id", unique=True),
        Index("ix_reward_redemptions_ws_customer_reward", "workspace_id", "customer_id", "reward_id"),
    )

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    reward_id: Mapped[int] = mapped_column(BigId, ForeignKey("rewards.id", ondelete="RESTRICT"), index=True)
    source_type: Mapped[str] = mapped_column(String(40))  # redemption | grant | referral_welcome | ...
    source_id: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(default=0)  # points spent (0 for grants)
    ledger_transaction_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(20), default="issued")  # issued | cancelled | refunded
    actor: Mapped[str] = mapped_column(String(120))
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Promotion(WorkspaceScoped):
    """A campaign's codes outside points: a batch of single-use codes or one multi-use code."""

    __tablename__ = "promotions"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    purpose: Mapped[str] = mapped_column(String(30), default="campaign")  # campaign | service_recovery
    code_type: Mapped[str] = mapped_column(String(20))  # single_use | multi_use
    discount_kind: Mapped[str] = mapped_column(String(30))
    value: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    min_order_amount: Mapped[Decimal | None] = mapped_column(Money)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_uses_total: Mapped[int | None]  # multi-use: how often the code may be used in all
    per_customer_limit: Mapped[int | None]
    active: Mapped[bool] = mapped_column(default=True)
    codes_generated: Mapped[int] = mapped_column(default=0)


class Coupon(WorkspaceScoped):
    """A code the shop accepts at checkout. Single-use: ``max_uses`` 1. Consumed with a conditional
    ``UPDATE ... SET used_count = used_count + 1 WHERE used_count < max_uses`` (see coupons.py)."""

    __tablename__ = "coupons"
    __table_args__ = (
        Index("uq_coupons_ws_code", "workspace_id", "code", unique=True),
        Index("ix_coupons_ws_expiring", "workspace_id", "status", "expires_at"),
        Index("ix_coupons_ws_promotion", "workspace_id", "promotion_id"),
        CheckConstraint("used_count >= 0", name="used_count_not_negative"),
        CheckConstraint("max_uses IS NULL OR used_count <= max_uses", name="used_count_within_max"),
    )

    code: Mapped[str] = mapped_column(String(60))  # normalised: upper case, no separators
    origin: Mapped[str] = mapped_column(String(20))  # reward | promotion
    reward_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("rewards.id", ondelete="RESTRICT"))
    promotion_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("promotions.id", ondelete="CASCADE"))
    redemption_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("reward_redemptions.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    discount_kind: Mapped[str] = mapped_column(String(30))
    value: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    min_order_amount: Mapped[Decimal | None] = mapped_column(Money)
    sku: Mapped[str | None] = mapped_column(String(100))
    max_uses: Mapped[int | None] = mapped_column(default=1)  # None: unlimited
    used_count: Mapped[int] = mapped_column(default=0)
    per_customer_limit: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | used | expired | void
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CouponUse(WorkspaceScoped):
    """One order's use of a coupon. Unique per (coupon, order): consuming is idempotent by order."""

    __tablename__ = "coupon_uses"
    __table_args__ = (
        Index("uq_coupon_uses_coupon_order", "coupon_id", "order_ref", unique=True),
        Index("ix_coupon_uses_ws_order", "workspace_id", "order_ref"),
        Index("ix_coupon_uses_coupon_customer", "coupon_id", "customer_id", "status"),
    )

    coupon_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupons.id", ondelete="CASCADE"))
    order_ref: Mapped[str] = mapped_column(String(200))  # the shop's order id (Order.external_id)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id", ondelete="SET NULL"))
    order_amount: Mapped[Decimal] = mapped_column(Money)
    discount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), default="consumed")  # consumed | released
    consumed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(120))


class Fulfilment(WorkspaceScoped):
    """Staff work for rewards that are not a code: free products, experiences, donations, custom."""

    __tablename__ = "reward_fulfilments"
    __table_args__ = (
        Index("uq_reward_fulfilments_redemption", "redemption_id", unique=True),
        Index("ix_reward_fulfilments_ws_status", "workspace_id", "status", "id"),
    )

    redemption_id: Mapped[int] = mapped_column(BigId, ForeignKey("reward_redemptions.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    reward_id: Mapped[int] = mapped_column(BigId, ForeignKey("rewards.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(30))
    sku: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | fulfilled | cancelled
    note: Mapped[str] = mapped_column(String(2000), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # e.g. shipping address, guests
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_by: Mapped[str | None] = mapped_column(String(120))
