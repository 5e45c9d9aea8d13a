"""Request and response bodies of the tier endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import AwareDatetime, Field

from patronage.kit.schemas import Input, Output
from patronage.tiers.rules import DowngradePolicy, Metric, Window


class TierProgramIn(Input):
    metric: Metric = Metric.SPEND
    window: Window = Window.CALENDAR_YEAR
    grace_days: int = Field(default=30, ge=0, le=3650)
    downgrade_policy: DowngradePolicy = DowngradePolicy.DROP_ONE


class TierProgramOut(Output):
    metric: Metric
    window: Window
    grace_days: int
    downgrade_policy: DowngradePolicy


class TierCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    threshold: Decimal = Field(ge=0, max_digits=18, decimal_places=4)
    earning_multiplier: Decimal = Field(default=Decimal(1), gt=0, le=100, max_digits=8, decimal_places=4)
    perks: list[str] = Field(default_factory=list, max_length=50)
    color: str | None = Field(default=None, max_length=20)


class TierUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    threshold: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    earning_multiplier: Decimal | None = Field(default=None, gt=0, le=100, max_digits=8, decimal_places=4)
    perks: list[str] | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=20)


class TierOut(Output):
    id: int
    name: str
    description: str
    threshold: Decimal
    earning_multiplier: Decimal
    perks: list[str]
    color: str | None


class TierOverrideIn(Input):
    tier_id: int | None = Field(description="the tier to hold until `until`; null = no tier")
    until: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class TierRef(Output):
    id: int
    name: str


class ProgressOut(Output):
    metric: Metric
    window: Window
    value: Decimal = Field(description="the qualifying metric over the current window")
    next_tier: TierRef | None
    to_next: Decimal | None = Field(description="how much more of the metric reaches the next tier")
    to_next_text: str | None = Field(description='e.g. "120.00 EUR" or "350 points"')
    keep_threshold: Decimal | None
    to_keep: Decimal = Field(description="how much more is needed by keep_by to keep the current tier")
    keep_by: datetime | None


class TierHistoryOut(Output):
    id: int
    from_tier_id: int | None
    to_tier_id: int | None
    reason: str
    at: datetime
    actor: str
    data: dict[str, object]


class OverrideOut(Output):
    tier_id: int | None
    until: datetime
    reason: str | None


class CustomerTierOut(Output):
    customer_id: int
    tier: TierOut | None
    earned_tier_id: int | None
    entered_at: datetime | None
    review_at: datetime | None
    downgrade_at: datetime | None = Field(description="set while in the grace period before a downgrade")
    override: OverrideOut | None
    earning_multiplier: Decimal
    progress: ProgressOut
    history: list[TierHistoryOut]


class TierCount(Output):
    tier_id: int | None
    name: str | None
    customers: int
