"""Ledger request and response bodies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from patronage.kit.schemas import MAX_COUNT, Input, Output
from patronage.ledger.expiry_rules import PERIODS, POLICY_KINDS


class Balance(Output):
    """A customer's points now. ``clawback_owed``: points reversed after they were spent, repaid first
    from future earnings (claw-back policy)."""

    customer_id: int
    points_name: str = "points"
    available: int = 0
    pending: int = 0
    clawback_owed: int = 0
    expiring_soon: int = 0
    expiring_within_days: int = 30
    next_expiry_at: datetime | None = None
    next_expiry_points: int = 0
    lifetime_earned: int = 0
    lifetime_spent: int = 0
    lifetime_expired: int = 0
    lifetime_reversed: int = 0
    lifetime_adjusted: int = 0
    last_activity_at: datetime | None = None


class EntryOut(Output):
    account: str
    amount: int


class TransactionOut(Output):
    id: int
    customer_id: int
    kind: str
    points: int
    source_type: str
    source_id: str
    reason: str
    actor: str
    occurred_at: datetime
    created_at: datetime
    reverses_id: int | None
    data: dict[str, Any]
    entries: list[EntryOut] = []


class LotOut(Output):
    id: int
    transaction_id: int
    amount: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    released_at: datetime | None
    expires_at: datetime | None

    @property
    def is_pending(self) -> bool:
        return self.released_at is None


class AdjustmentIn(Input):
    points: int = Field(ge=-MAX_COUNT, le=MAX_COUNT, description="positive credits, negative debits; never zero")
    reason: str = Field(min_length=1, max_length=500)
    source_id: str | None = Field(
        default=None, max_length=200,
        description="your id for this adjustment (idempotency); defaults to the Idempotency-Key header",
    )

    @field_validator("points")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        return value


ExpiryPolicyName = Literal["never", "after_earning", "after_inactivity", "end_of_period"]
PeriodName = Literal["month", "quarter", "year"]
Shortfall = Literal["negative_balance", "claw_back", "write_off"]
assert set(POLICY_KINDS) == {"never", "after_earning", "after_inactivity", "end_of_period"}
assert set(PERIODS) == {"month", "quarter", "year"}


class LoyaltySettingsOut(Output):
    points_name: str
    return_window_days: int
    expiry_policy: ExpiryPolicyName
    expiry_months: int
    expiry_period: PeriodName
    expiry_warning_days: int
    allow_negative_balance: bool
    reversal_shortfall: Shortfall
    cost_per_point: Decimal
    breakage_rate: Decimal | None


class LoyaltySettingsUpdate(Input):
    """Fields left out keep their value."""

    points_name: str | None = Field(default=None, min_length=1, max_length=40)
    return_window_days: int | None = Field(default=None, ge=0, le=365)
    expiry_policy: ExpiryPolicyName | None = None
    expiry_months: int | None = Field(default=None, ge=1, le=120)
    expiry_period: PeriodName | None = None
    expiry_warning_days: int | None = Field(default=None, ge=0, le=365)
    allow_negative_balance: bool | None = None
    reversal_shortfall: Shortfall | None = None
    cost_per_point: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    breakage_rate: Decimal | None = Field(default=None, ge=0, le=1, max_digits=6, decimal_places=4)
