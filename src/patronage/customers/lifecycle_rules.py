"""Lifecycle stage, pure: prospect -> new -> active -> loyal -> advocate, plus at_risk and lapsed.

Inactivity is judged against the customer's own purchase rhythm: someone who buys every week is at
risk after a quiet month, someone who buys twice a year is not. The rhythm is the mean interval
between their orders, ``(last_order_at - first_order_at) / (orders_count - 1)``; customers with a
single order fall back to fixed thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SECONDS_PER_DAY = 86_400.0


class Stage(StrEnum):
    PROSPECT = "prospect"
    NEW = "new"
    ACTIVE = "active"
    LOYAL = "loyal"
    ADVOCATE = "advocate"
    AT_RISK = "at_risk"
    LAPSED = "lapsed"


DEFAULT_ADVOCACY_EVENTS = ("review_posted", "social_share", "referral")


class LifecycleDefinitions(BaseModel):
    """The workspace-tunable thresholds. Every field has a default; a workspace overrides any of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    new_window_days: int = Field(30, ge=1, le=3650, description="a one-order customer is 'new' this long")
    loyal_min_orders: int = Field(5, ge=2, le=100_000, description="orders that make a customer loyal")
    loyal_min_spent: Decimal | None = Field(
        None, ge=0, description="lifetime spend that also makes a customer loyal (off when null)"
    )
    advocate_event_types: tuple[str, ...] = Field(
        DEFAULT_ADVOCACY_EVENTS, min_length=1, max_length=20,
        description="behavioural event types that count as advocacy signals",
    )
    advocate_min_signals: int = Field(1, ge=1, le=10_000)
    advocate_window_days: int = Field(365, ge=1, le=3650, description="signals count within this window")
    at_risk_factor: float = Field(2.0, gt=1, le=100, description="at risk past k1 x the mean interval")
    lapsed_factor: float = Field(4.0, gt=1, le=100, description="lapsed past k2 x the mean interval")
    min_rhythm_days: float = Field(7.0, ge=1, le=3650, description="floor on the mean interval")
    single_order_at_risk_days: int = Field(90, ge=1, le=3650)
    single_order_lapsed_days: int = Field(180, ge=1, le=3650)

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleDefinitions:
        if self.lapsed_factor <= self.at_risk_factor:
            raise ValueError("lapsed_factor must be greater than at_risk_factor")
        if self.single_order_lapsed_days <= self.single_order_at_risk_days:
            raise ValueError("single_order_lapsed_days must be greater than single_order_at_risk_days")
        return self


@dataclass(frozen=True)
class Activity:
    """What the rules look at: the order aggregates kept on the profile and the advocacy signals."""

    orders_count: int
    total_spent: Decimal
    first_order_at: datetime | None
    last_order_at: datetime | None
    advocacy_signals: int = 0


@dataclass(frozen=True)
class StageDecision:
    stage: Stage
    reason: dict[str, Any]


def mean_interval_days(activity: Activity) -> float | None:
    """The customer's purchase rhythm, or None with fewer than two orders."""
    if activity.orders_count < 2 or activity.first_order_at is None or activity.last_order_at is None:
        return None
    span = (activity.last_order_at - activity.first_order_at).total_seconds() / SECONDS_PER_DAY
    return max(span, 0.0) / (activity.orders_count - 1)


def inactivity_thresholds(activity: Activity, rules: LifecycleDefinitions) -> tuple[float, float, float | None]:
    """(at-risk after days, lapsed after days, rhythm in days or None for the fixed fallback)."""
    rhythm = mean_interval_days(activity)
    if rhythm is None:
        return float(rules.single_order_at_risk_days), float(rules.single_order_lapsed_days), None
    expected = max(rhythm, rules.min_rhythm_days)
    return rules.at_risk_factor * expected, rules.lapsed_factor * expected, rhythm


def is_loyal(activity: Activity, rules: LifecycleDefinitions) -> bool:
    if activity.orders_count >= rules.loyal_min_orders:
        return True
    return rules.loyal_min_spent is not None and activity.total_spent >= rules.loyal_min_spent


def compute_stage(activity: Activity, rules: LifecycleDefinitions, now: datetime) -> StageDecision:
    """The stage a customer is in at ``now``. Precedence: lapsed, at_risk, advocate, loyal, new, active."""
    if activity.orders_count <= 0 or activity.last_order_at is None:
        return StageDecision(Stage.PROSPECT, {"orders_count": max(activity.orders_count, 0)})
    idle = max((now - activity.last_order_at).total_seconds() / SECONDS_PER_DAY, 0.0)
    at_risk_after, lapsed_after, rhythm = inactivity_thresholds(activity, rules)
    reason: dict[str, Any] = {
        "orders_count": activity.orders_count,
        "total_spent": str(activity.total_spent),
        "days_since_last_order": round(idle, 2),
        "rhythm_days": None if rhythm is None else round(rhythm, 2),
        "at_risk_after_days": round(at_risk_after, 2),
        "lapsed_after_days": round(lapsed_after, 2),
        "advocacy_signals": activity.advocacy_signals,
    }
    if idle > lapsed_after:
        stage = Stage.LAPSED
    elif idle > at_risk_after:
        stage = Stage.AT_RISK
    elif is_loyal(activity, rules):
        advocate = activity.advocacy_signals >= rules.advocate_min_signals
        stage = Stage.ADVOCATE if advocate else Stage.LOYAL
    elif activity.orders_count == 1 and idle <= rules.new_window_days:
        stage = Stage.NEW
    else:
        stage = Stage.ACTIVE
    return StageDecision(stage, reason)
