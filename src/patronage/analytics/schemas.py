"""Analytics API shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from patronage.analytics.kpis import Kpi
from patronage.kit.schemas import Input, Output

PeriodName = Literal["day", "week", "month"]
BreakdownName = Literal["segment", "tier", "channel", "cohort", "membership"]


class KpiInfoOut(Output):
    kpi: str
    formula: str
    unit: str
    higher_is_better: bool
    available: bool
    note: str | None = None


class KpiGroupSeries(Output):
    group: str
    values: list[float | None]  # aligned with KpiSeriesOut.periods; null: undefined (zero denominator)


class KpiSeriesOut(Output):
    """Columnar: one list of periods, one list of values per group (compact and fast for charts)."""

    kpi: str
    period: PeriodName
    breakdown: str | None
    formula: str
    note: str | None = None
    computed_at: datetime | None
    periods: list[str]  # labels: 2026-03, 2026-W11, 2026-03-14
    starts: list[date]
    partial: list[bool]  # the period is still in progress
    series: list[KpiGroupSeries]


class RefreshOut(Output):
    id: int
    status: str
    full: bool
    job_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rows_extracted: dict[str, Any]
    timings: dict[str, Any]
    error: str | None


class RefreshRequest(Input):
    full: bool = False


class GoalCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    kpi: Kpi
    period: PeriodName = "month"
    breakdown: BreakdownName | None = None
    group: str | None = Field(default=None, max_length=200)
    comparator: Literal["gte", "lte"] = "gte"
    target: float
    deadline: date

    @field_validator("group")
    @classmethod
    def _group_needs_breakdown(cls, value: str | None) -> str | None:
        return value


class GoalUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    target: float | None = None
    deadline: date | None = None
    comparator: Literal["gte", "lte"] | None = None


class GoalProgress(Output):
    current: float | None
    current_period: str | None
    baseline: float | None
    baseline_period: str | None
    percent_of_way: float | None
    achieved: bool
    forecast_method: str
    forecast_at_deadline: float | None
    periods_to_deadline: int | None
    on_track: bool | None
    note: str | None = None


class GoalOut(Output):
    id: int
    name: str
    kpi: str
    period: str
    breakdown: str | None
    group: str | None
    comparator: str
    target: float
    deadline: date
    created_at: datetime
    progress: GoalProgress | None = None
