"""Earning request and response bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator

from patronage.kit.schemas import MAX_COUNT, Input, Output

DOCUMENT_HELP = "the rule-set document: {stacking, rules: [...]} (docs/earning-rules.md)"


class RuleSetCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    document: dict[str, Any] | None = Field(default=None, description=DOCUMENT_HELP + "; becomes draft version 1")


class RuleSetUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    archived: bool | None = None


class VersionCreate(Input):
    document: dict[str, Any] = Field(description=DOCUMENT_HELP)
    notes: str = Field(default="", max_length=2000)


class VersionUpdate(Input):
    document: dict[str, Any] | None = Field(default=None, description=DOCUMENT_HELP)
    notes: str | None = Field(default=None, max_length=2000)


class VersionOut(Output):
    rule_set_id: int
    version: int
    status: str
    document: dict[str, Any]
    notes: str
    created_by: str
    created_at: datetime
    published_at: datetime | None
    published_by: str | None


class RuleSetOut(Output):
    id: int
    name: str
    description: str
    published_version: int | None
    archived: bool
    created_at: datetime
    versions: list[int] = []


class PreviewLine(Input):
    line_id: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=200)
    quantity: int = Field(default=1, ge=1)
    unit_price: Decimal = Field(max_digits=18, decimal_places=4)
    discount: Decimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=4)
    is_reward: bool = False


class PreviewOrder(Input):
    lines: list[PreviewLine] = Field(default_factory=list, max_length=1000)
    subtotal: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    discount_total: Decimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=4)
    total: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    channel: str | None = Field(default=None, max_length=20)
    store: str | None = Field(default=None, max_length=200)
    placed_at: datetime | None = None
    first_order: bool | None = Field(default=None, description="default: whether the customer has no order yet")
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _amounts(self) -> PreviewOrder:
        if not self.lines and self.subtotal is None:
            raise ValueError("send lines or a subtotal")
        return self


class PreviewIn(Input):
    """Evaluate an order (an existing one by id, or one described here) without recording anything."""

    order_id: int | None = None
    order: PreviewOrder | None = None
    customer_id: int | None = Field(default=None, description="whose tier, segments and limits apply")
    rule_set_id: int | None = Field(default=None, description="with version: evaluate that (draft) version")
    version: int | None = Field(default=None, ge=1, le=MAX_COUNT)

    @model_validator(mode="after")
    def _one_order(self) -> PreviewIn:
        if (self.order_id is None) == (self.order is None):
            raise ValueError("send exactly one of order_id or order")
        if (self.rule_set_id is None) != (self.version is None):
            raise ValueError("send rule_set_id and version together")
        return self


class RuleExplanation(Output):
    key: str
    name: str
    priority: int
    matched: bool
    reason: str
    points: int
    raw_points: str
    multiplier: str
    capped_by: str | None
    lines: dict[str, int]


class PreviewOut(Output):
    points: int
    lines: dict[str, int] = Field(description="points per order line (by position)")
    net: dict[str, str] = Field(description="net paid amount per earning line")
    tier_multiplier: str
    rule_sets: list[str]
    pending_until: datetime | None
    rules: list[RuleExplanation]


class BacktestCreate(Input):
    rule_set_id: int
    version: int = Field(ge=1, le=MAX_COUNT)
    date_from: datetime
    date_to: datetime

    @model_validator(mode="after")
    def _range(self) -> BacktestCreate:
        if self.date_from.tzinfo is None or self.date_to.tzinfo is None:
            raise ValueError("date_from and date_to need a time zone offset")
        if self.date_to <= self.date_from:
            raise ValueError("date_to must be after date_from")
        return self


class BacktestOut(Output):
    id: int
    rule_set_id: int
    version: int
    date_from: datetime
    date_to: datetime
    status: str
    processed: int
    total: int
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
