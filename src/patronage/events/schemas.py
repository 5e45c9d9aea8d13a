"""Request and response bodies for products, orders, order status changes and returns.

Inputs are normalised on the way in (money to 4 decimals, instants to UTC, currencies upper case), so two
sendings of one fact produce the same canonical form and the same ``content_hash``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints, field_validator

from patronage.customers.normalise import normalise_email
from patronage.events.currencies import check_currency
from patronage.kit.schemas import Input, Output

OrderStatus = Literal["pending", "paid", "shipped", "delayed", "delivered", "cancelled"]
Channel = Literal["web", "app", "store", "phone", "marketplace", "social", "email", "other"]
Outcome = Literal["created", "updated", "unchanged"]
ORDER_STATUSES: tuple[str, ...] = OrderStatus.__args__  # type: ignore[attr-defined]
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
MAX_LINES = 500
CENT = Decimal("0.01")


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of the range of representable instants") from None


# Up to 4 decimals (the Money column's scale); NaN and infinities are refused by pydantic.
Amount = Annotated[Decimal, Field(max_digits=18, decimal_places=4)]
NonNegative = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4)]
Instant = Annotated[AwareDatetime, AfterValidator(_utc)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Currency = Annotated[str, AfterValidator(check_currency)]


def _email(value: str | None) -> str | None:
    return None if value is None or not value.strip() else normalise_email(value)


Email = Annotated[str | None, Field(max_length=320), AfterValidator(_email)]


def content_hash(model: BaseModel) -> str:
    """SHA-256 of the JSON of a validated input (fields in schema order): equal inputs, equal hashes.

    Inputs that differ only in form (``10.5`` and ``10.50``, key order in ``attributes``) hash apart;
    the services then compare field by field and still answer ``unchanged``.
    """
    return hashlib.sha256(model.model_dump_json().encode()).hexdigest()


# ---- products ----------------------------------------------------------------------------------------
class ProductIn(Input):
    """A catalogue entry, created or replaced by ``sku``."""

    sku: Sku
    name: str = Field(min_length=1, max_length=300)
    category: str | None = Field(None, max_length=200)
    price: NonNegative | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    active: bool = True

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ProductOut(Output):
    id: int
    sku: str
    name: str
    category: str | None
    price: Decimal | None
    tags: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


# ---- orders ------------------------------------------------------------------------------------------
class OrderLineIn(Input):
    line_id: str | None = Field(None, min_length=1, max_length=200, description="the shop's line id")
    sku: str | None = Field(None, min_length=1, max_length=100)
    name: str | None = Field(None, max_length=300, description="defaults to the catalogue's name")
    category: str | None = Field(None, max_length=200, description="defaults to the catalogue's category")
    quantity: int = Field(1, ge=1, le=1_000_000)
    unit_price: Amount = Field(description="before discounts; negative only on is_reward lines")
    discount: NonNegative = Field(Decimal(0), description="discount on the whole line")
    is_reward: bool = Field(False, description="a loyalty reward or discount line: never earns points")


class OrderIn(Input):
    """An order, created or updated by ``external_id``. See docs/ingestion.md for the money rule."""

    external_id: ExternalId
    customer_external_id: ExternalId | None = None
    customer_email: Email = None
    placed_at: Instant
    currency: Currency | None = Field(None, description="ISO 4217; defaults to the workspace's currency")
    channel: Channel | None = None
    store: str | None = Field(None, max_length=200)
    status: OrderStatus = "paid"
    lines: list[OrderLineIn] = Field(default_factory=list, max_length=MAX_LINES)
    subtotal: NonNegative | None = Field(None, description="sum of line nets; computed when omitted")
    discount_total: NonNegative = Field(Decimal(0), description="order-level discounts")
    shipping_total: NonNegative = Decimal(0)
    tax_total: NonNegative = Decimal(0)
    other_total: Amount = Field(Decimal(0), description="tips, duties, fees")
    taxes_included: bool = Field(False, description="line prices already include tax_total")
    total: NonNegative | None = Field(None, description="checked against the parts; computed when omitted")
    attributes: dict[str, Any] = Field(default_factory=dict)


class OrderLineOut(Output):
    position: int
    line_id: str | None
    sku: str | None
    name: str | None
    category: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal
    is_reward: bool


class OrderOut(Output):
    id: int
    external_id: str
    customer_id: int
    currency: str
    subtotal: Decimal
    discount_total: Decimal
    shipping_total: Decimal
    tax_total: Decimal
    other_total: Decimal
    taxes_included: bool
    total: Decimal
    refunded_total: Decimal
    channel: str | None
    store: str | None
    status: str
    placed_at: datetime
    attributes: dict[str, Any]
    source: str
    lines: list[OrderLineOut]
    created_at: datetime
    updated_at: datetime


class StatusChangeIn(Input):
    status: OrderStatus
    at: Instant | None = Field(None, description="when it happened; defaults to now")
    note: str | None = Field(None, max_length=500)


class StatusChangeOut(Output):
    id: int
    status: str
    previous_status: str | None
    at: datetime
    note: str | None


# ---- returns -----------------------------------------------------------------------------------------
class ReturnLineIn(Input):
    line_id: str | None = Field(None, min_length=1, max_length=200)
    sku: str | None = Field(None, min_length=1, max_length=100)
    quantity: int = Field(1, ge=1, le=1_000_000)
    amount: NonNegative | None = Field(None, description="refunded for this line; defaults to its net share")


class ReturnIn(Input):
    """A refund: of the whole order (no lines, no amount), of lines, or of an amount."""

    external_id: ExternalId
    order_external_id: ExternalId
    returned_at: Instant | None = Field(None, description="defaults to now")
    reason: str | None = Field(None, max_length=500)
    currency: Currency | None = Field(None, description="must be the order's; defaults to it")
    amount: NonNegative | None = Field(None, description="the money refunded; defaults to the lines' shares")
    lines: list[ReturnLineIn] = Field(default_factory=list, max_length=MAX_LINES)


class ReturnOut(Output):
    id: int
    external_id: str
    order_external_id: str
    order_id: int | None
    status: str
    kind: str
    amount: Decimal
    currency: str | None
    reason: str | None
    returned_at: datetime
    applied_at: datetime | None
    lines: list[dict[str, Any]]
    error: str | None
    source: str
    created_at: datetime


class OrderDetail(OrderOut):
    status_history: list[StatusChangeOut]
    returns: list[ReturnOut]


# ---- results -----------------------------------------------------------------------------------------
T = TypeVar("T")


class Ingested(BaseModel, Generic[T]):
    """The outcome of one idempotent write: ``unchanged`` when the same input was already recorded."""

    status: Outcome
    result: T


class BatchIn(Input):
    items: list[Any] = Field(description="up to 1,000 items; each is validated and applied on its own")
