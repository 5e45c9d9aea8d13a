"""Request and response bodies of checkout coupon calls and promotions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from patronage.kit.schemas import MAX_COUNT, Input, Output
from patronage.rewards.rules import RewardKind, check_custom_code
from patronage.rewards.schemas import _check_currency

DiscountKind = Literal[RewardKind.FIXED_DISCOUNT, RewardKind.PERCENTAGE_DISCOUNT, RewardKind.FREE_SHIPPING]
OrderAmount = Field(ge=0, max_digits=18, decimal_places=4, description="the order's amount before this coupon")


class CouponCheckIn(Input):
    code: str = Field(min_length=1, max_length=80)
    order_amount: Decimal = OrderAmount
    currency: str | None = None
    customer_id: int | None = None

    _cur = field_validator("currency")(_check_currency)


class CouponConsumeIn(CouponCheckIn):
    order_id: str = Field(min_length=1, max_length=200, description="the shop's order id; a repeat is a replay")


class CouponReleaseIn(Input):
    code: str = Field(min_length=1, max_length=80)
    order_id: str = Field(min_length=1, max_length=200)


class CouponValidation(Output):
    code: str
    valid: bool
    reason: str | None = Field(description="why not (a stable code): not_found, expired, used_up, ...")
    coupon_id: int | None
    discount_kind: str | None
    discount_amount: Decimal = Field(description="money off this order (0 for free shipping / products)")
    free_shipping: bool
    sku: str | None
    expires_at: datetime | None
    uses_left: int | None = Field(description="null = unlimited")


class CouponUseOut(Output):
    id: int
    coupon_id: int
    code: str
    order_id: str
    customer_id: int | None
    order_amount: Decimal
    discount: Decimal
    discount_kind: str
    free_shipping: bool
    sku: str | None
    currency: str | None
    status: str
    consumed_at: datetime
    released_at: datetime | None
    replayed: bool = Field(default=False, description="this order had already consumed the coupon")


class PromotionCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    purpose: Literal["campaign", "service_recovery"] = "campaign"
    code_type: Literal["single_use", "multi_use"]
    discount_kind: DiscountKind
    value: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=4)
    currency: str | None = None
    min_order_amount: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    max_uses_total: int | None = Field(default=None, ge=1, le=MAX_COUNT,
                                       description="multi_use: uses in all (null = unlimited)")
    per_customer_limit: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    code: str | None = Field(default=None, description="multi_use: the code customers type (generated if absent)")
    active: bool = True

    _cur = field_validator("currency")(_check_currency)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        return None if value is None else check_custom_code(value)


class PromotionUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    active: bool | None = None
    valid_until: AwareDatetime | None = Field(default=None, description="also moves the expiry of unused codes")


class PromotionOut(Output):
    id: int
    name: str
    description: str
    purpose: str
    code_type: str
    discount_kind: str
    value: Decimal | None
    currency: str | None
    min_order_amount: Decimal | None
    valid_from: datetime | None
    valid_until: datetime | None
    max_uses_total: int | None
    per_customer_limit: int | None
    active: bool
    codes_generated: int
    code: str | None = Field(default=None, description="multi_use: the shared code")


class CodeBatchIn(Input):
    count: int = Field(ge=1, le=10_000)
    prefix: str = Field(default="", max_length=10, pattern=r"^[A-Za-z0-9]*$")
    customer_id: int | None = Field(default=None, description="bind the codes to one customer (apology codes)")
    expires_at: AwareDatetime | None = Field(default=None, description="defaults to the promotion's valid_until")


class CodeBatchOut(Output):
    promotion_id: int
    count: int
    codes: list[str]
