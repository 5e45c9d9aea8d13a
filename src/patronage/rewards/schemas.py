"""Request and response bodies of the reward catalog, redemptions, fulfilments and the loyalty summary."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field, field_validator

from patronage.kit.schemas import MAX_COUNT, Input, Output
from patronage.ledger.schemas import Balance
from patronage.rewards.rules import ExpiredCouponPolicy, RewardKind, format_code
from patronage.tiers.schemas import CustomerTierOut

Amount = Field(default=None, ge=0, max_digits=18, decimal_places=4)


def _check_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://", "/")):
        raise ValueError("must be an http(s) URL or a path")
    return value


def _check_currency(value: str | None) -> str | None:
    if value is not None and (len(value) != 3 or not value.isalpha() or not value.isupper()):
        raise ValueError("must be an ISO 4217 code such as EUR or USD")
    return value


class RewardCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    image_url: str | None = Field(default=None, max_length=2000)
    kind: RewardKind
    points_cost: int = Field(ge=0, le=100_000_000)
    value: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=4,
                                  description="money off (fixed_discount) or percent off (percentage_discount)")
    currency: str | None = Field(default=None, description="fixed_discount; defaults to the workspace's")
    sku: str | None = Field(default=None, max_length=100, description="free_product")
    min_order_amount: Decimal | None = Amount
    tier_ids: list[int] = Field(default_factory=list, max_length=50)
    segment_ids: list[int] = Field(default_factory=list, max_length=50)
    stock: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    per_customer_limit: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    coupon_valid_days: int | None = Field(default=None, ge=1, le=3650)
    expired_coupon_policy: ExpiredCouponPolicy = ExpiredCouponPolicy.FORFEIT
    active: bool = True

    _url = field_validator("image_url")(_check_url)
    _cur = field_validator("currency")(_check_currency)


class RewardUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    image_url: str | None = Field(default=None, max_length=2000)
    points_cost: int | None = Field(default=None, ge=0, le=100_000_000)
    value: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=4)
    currency: str | None = None
    sku: str | None = Field(default=None, max_length=100)
    min_order_amount: Decimal | None = Amount
    tier_ids: list[int] | None = Field(default=None, max_length=50)
    segment_ids: list[int] | None = Field(default=None, max_length=50)
    stock: int | None = Field(default=None, ge=0, le=MAX_COUNT, description="replaces the stock; null = unlimited")
    per_customer_limit: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    coupon_valid_days: int | None = Field(default=None, ge=1, le=3650)
    expired_coupon_policy: ExpiredCouponPolicy | None = None
    active: bool | None = None

    _url = field_validator("image_url")(_check_url)
    _cur = field_validator("currency")(_check_currency)


class RestockIn(Input):
    delta: int = Field(ge=-MAX_COUNT, le=MAX_COUNT,
                       description="added to the stock (negative removes); the stock never goes below 0")


class RewardOut(Output):
    id: int
    name: str
    description: str
    image_url: str | None
    kind: RewardKind
    points_cost: int
    value: Decimal | None
    currency: str | None
    sku: str | None
    min_order_amount: Decimal | None
    tier_ids: list[int]
    segment_ids: list[int]
    stock: int | None
    redeemed_count: int
    per_customer_limit: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    coupon_valid_days: int | None
    expired_coupon_policy: ExpiredCouponPolicy
    active: bool


class RedeemIn(Input):
    request_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="the caller's id for this redemption: a repeat returns the first redemption",
    )
    details: dict[str, Any] = Field(default_factory=dict, description="fulfilment details, e.g. a shipping address")


class CouponOut(Output):
    id: int
    code: str
    display_code: str
    origin: str
    reward_id: int | None
    promotion_id: int | None
    customer_id: int | None
    discount_kind: str
    value: Decimal | None
    currency: str | None
    min_order_amount: Decimal | None
    sku: str | None
    max_uses: int | None
    used_count: int
    per_customer_limit: int | None
    status: str
    valid_from: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, coupon: Any) -> CouponOut:
        data = {name: getattr(coupon, name) for name in cls.model_fields if name != "display_code"}
        return cls(**data, display_code=format_code(coupon.code))


class FulfilmentOut(Output):
    id: int
    redemption_id: int
    customer_id: int
    reward_id: int
    kind: str
    sku: str | None
    status: str
    note: str
    details: dict[str, Any]
    fulfilled_at: datetime | None
    fulfilled_by: str | None


class FulfilmentUpdate(Input):
    status: Literal["fulfilled", "cancelled"]
    note: str = Field(default="", max_length=2000)


class RedemptionOut(Output):
    id: int
    customer_id: int
    reward_id: int
    source_type: str
    source_id: str
    points: int
    status: str
    actor: str
    redeemed_at: datetime
    cancelled_at: datetime | None
    coupon: CouponOut | None = None
    fulfilment: FulfilmentOut | None = None


class CancelRedemptionIn(Input):
    reason: str = Field(min_length=1, max_length=500)


class RewardOffer(Output):
    reward: RewardOut
    affordable: bool
    available: bool = Field(description="the customer can redeem it now")
    reason: str | None = Field(description="why not (a stable code), when not available")
    points_short: int = Field(description="points still missing (0 when affordable)")


class LoyaltySummary(Output):
    """Everything a member's home screen needs in one call."""

    customer_id: int
    balance: Balance
    tier: CustomerTierOut
    rewards_available: list[RewardOffer] = Field(description="rewards the customer can redeem now")
    rewards_upcoming: list[RewardOffer] = Field(description="the next rewards in reach (only points missing)")
    referral_code: str | None
    referral_link: str | None
