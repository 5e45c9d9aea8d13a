"""Reporting periods (day, ISO week, calendar month) as small tables the SQL joins on.

Dates in the analytics store are *local* dates of the workspace's time zone, held as day numbers (days
since 1970-01-01), so the SQL needs no date function and runs unchanged on DuckDB and Spark. The
calendar maps each day number to its period index ``k`` (0 = the period holding the first purchase) and
to the period index of ``day + window`` (used for the "active within a trailing window" definitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import numpy as np
import pyarrow as pa

EPOCH = date(1970, 1, 1)
YEAR_DAYS = 365


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting on Monday
    MONTH = "month"

    @property
    def per_year(self) -> int:
        """How many periods make the "trailing year" (365 days, 52 weeks, 12 months)."""
        return {Period.DAY: 365, Period.WEEK: 52, Period.MONTH: 12}[self]


def day_number(day: date) -> int:
    return (day - EPOCH).days


def from_day_number(number: int) -> date:
    return EPOCH + timedelta(days=int(number))


def period_start(day: date, period: Period) -> date:
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period_start(start: date, period: Period) -> date:
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_label(start: date, period: Period) -> str:
    if period is Period.MONTH:
        return start.strftime("%Y-%m")
    if period is Period.WEEK:
        iso = start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return start.isoformat()


@dataclass(frozen=True)
class Calendar:
    """Periods ``0..K`` covering ``[first_day, as_of]``, plus the boundary period ``K + 1``."""

    period: Period
    starts: list[date]  # K + 2 entries: the start of every period and of the one after the last
    as_of: date

    @property
    def last_index(self) -> int:
        """K: the index of the period holding ``as_of`` (possibly still in progress)."""
        return len(self.starts) - 2

    def label(self, k: int) -> str:
        return period_label(self.starts[k], self.period)

    def is_partial(self, k: int) -> bool:
        return self.starts[k + 1] > self.as_of + timedelta(days=1)

    def index_of(self, day: date) -> int:
        """Index of the period holding ``day`` (clamped to ``[0, K + 1]``)."""
        numbers = np.array([day_number(s) for s in self.starts], dtype=np.int64)
        return int(np.clip(np.searchsorted(numbers, day_number(day), side="right") - 1, 0, len(numbers) - 1))

    def periods_table(self) -> pa.Table:
        """``k, period_start, period_end`` (exclusive end) for ``k`` in ``0..K+1``."""
        ks = list(range(len(self.starts)))
        ends = [*self.starts[1:], next_period_start(self.starts[-1], self.period)]
        return pa.table(
            {
                "k": pa.array(ks, pa.int32()),
                "start_dnum": pa.array([day_number(s) for s in self.starts], pa.int32()),
                "end_dnum": pa.array([day_number(e) for e in ends], pa.int32()),
            }
        )

    def day_table(self, first_day: date, active_window_days: int) -> pa.Table:
        """``dnum, k, start_dnum, end_dnum, k_window, k_year`` for every day from ``first_day`` to ``as_of``.

        ``k_window`` is the index of the period holding ``dnum + active_window_days`` and ``k_year`` the one
        holding ``dnum + 365``, both capped at ``K + 1`` (beyond the calendar).
        """
        start_numbers = np.array([day_number(s) for s in self.starts], dtype=np.int64)
        days = np.arange(day_number(first_day), day_number(self.as_of) + 1, dtype=np.int64)
        cap = len(self.starts) - 1

        def index(values: np.ndarray) -> np.ndarray:
            return np.clip(np.searchsorted(start_numbers, values, side="right") - 1, 0, cap)

        k = index(days)
        bounds = np.append(start_numbers, day_number(next_period_start(self.starts[-1], self.period)))
        return pa.table(
            {
                "dnum": pa.array(days.astype(np.int32)),
                "k": pa.array(k.astype(np.int32)),
                "start_dnum": pa.array(bounds[k].astype(np.int32)),
                "end_dnum": pa.array(bounds[k + 1].astype(np.int32)),
                "k_window": pa.array(index(days + active_window_days).astype(np.int32)),
                "k_year": pa.array(index(days + YEAR_DAYS).astype(np.int32)),
            }
        )


def build_calendar(first_day: date, as_of: date, period: Period) -> Calendar:
    first_day = min(first_day, as_of)
    starts = [period_start(first_day, period)]
    while starts[-1] <= as_of:
        starts.append(next_period_start(starts[-1], period))
    return Calendar(period, starts, as_of)
