"""Response bodies of the liability reports."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import Field

from patronage.kit.schemas import Output


class AmountOut(Output):
    points: int
    value: Decimal


class AgeLineOut(Output):
    label: str
    min_days: int
    max_days: int | None
    available: AmountOut
    pending: AmountOut


class BreakageOut(Output):
    rate: Decimal | None = Field(description="expected share of outstanding points never redeemed")
    method: str = Field(description="observed (closed cohorts) | configured (loyalty settings) | none")
    cohorts_used: int
    points_resolved: int
    expired: int
    redeemed: int


class LiabilityOut(Output):
    as_of: datetime
    currency: str
    cost_per_point: Decimal
    available: AmountOut
    pending: AmountOut
    outstanding: AmountOut
    by_age: list[AgeLineOut]
    expiring_30_days: AmountOut
    expiring_90_days: AmountOut
    clawback_owed: int = Field(description="points customers owe after reversals of spent points")
    overdrawn: int = Field(description="points spent beyond balances (negative-balance policy)")
    breakage: BreakageOut
    breakage_value: Decimal
    liability_net: Decimal = Field(description="outstanding value net of expected breakage")


class CohortOut(Output):
    month: str
    issued: int
    redeemed: int
    expired: int
    reversed: int
    other: int
    remaining: int
    closed: bool


class BreakageReportOut(Output):
    estimate: BreakageOut
    cohorts: list[CohortOut]


class StatementOut(Output):
    start: datetime
    end: datetime
    basis: str
    currency: str
    cost_per_point: Decimal
    opening: dict[str, int]
    movements: dict[str, int]
    movements_by_bucket: dict[str, dict[str, int]]
    closing: dict[str, int]
    values: dict[str, Decimal]
    reconciles: bool
    difference: int = Field(description="closing - (opening + movements); 0 when the statement reconciles")


class SnapshotOut(Output):
    day: date = Field(description="the workspace's local day the snapshot belongs to")
    as_of: datetime = Field(description="when the ledger was read")
    duration_ms: int = Field(description="what computing the report took")
    report: LiabilityOut
