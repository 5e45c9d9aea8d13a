"""When points expire: pure functions of a policy, a UTC instant and the workspace's time zone.

Policies (``ExpiryPolicy.kind``):

* ``never``: points never expire.
* ``after_earning``: each lot expires ``months`` calendar months after it was earned, at the same local
  wall-clock time. A day that does not exist in the target month is clamped to the month's last day
  (31 Jan + 1 month = 28/29 Feb); a wall-clock time skipped by a DST gap moves forward by the gap.
* ``after_inactivity``: all of a customer's points expire ``months`` months after their last activity
  (earning or spending); lots carry no date, the account's ``last_activity_at`` drives it.
* ``end_of_period``: each lot expires at the end of the local month / quarter / year that contains the
  earning date plus ``months`` months, i.e. at local midnight starting the next period.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

PolicyKind = Literal["never", "after_earning", "after_inactivity", "end_of_period"]
Period = Literal["month", "quarter", "year"]
POLICY_KINDS: tuple[str, ...] = ("never", "after_earning", "after_inactivity", "end_of_period")
PERIODS: tuple[str, ...] = ("month", "quarter", "year")


@dataclass(frozen=True)
class ExpiryPolicy:
    kind: PolicyKind = "never"
    months: int = 12
    period: Period = "year"

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ValueError(f"unknown expiry policy {self.kind!r}")
        if self.period not in PERIODS:
            raise ValueError(f"unknown expiry period {self.period!r}")
        if self.months < 0:
            raise ValueError("months must not be negative")


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC instant")


def local_to_utc(local_naive: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time to UTC. Repeated (fall-back) times take the first occurrence; times in a
    spring-forward gap land just after the gap."""
    aware = local_naive.replace(tzinfo=tz, fold=0)
    utc = aware.astimezone(UTC)
    # A gap time round-trips to another wall-clock time; fold=0 then used the pre-gap offset, which puts
    # the instant after the gap already (e.g. 02:30 in a 02:00->03:00 gap becomes 03:30 local).
    return utc


def add_months(day: date, months: int) -> date:
    """Calendar months, clamping to the last day of the target month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def shift_months(at: datetime, months: int, tz: ZoneInfo) -> datetime:
    """``months`` calendar months after ``at`` at the same local wall-clock time, as UTC."""
    _require_aware(at)
    local = at.astimezone(tz)
    target = add_months(local.date(), months)
    return local_to_utc(datetime.combine(target, local.time().replace(tzinfo=None)), tz)


def period_start(day: date, period: Period) -> date:
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def next_period_start(day: date, period: Period) -> date:
    start = period_start(day, period)
    return add_months(start, {"month": 1, "quarter": 3, "year": 12}[period])


def end_of_period(at: datetime, months: int, period: Period, tz: ZoneInfo) -> datetime:
    """Local midnight starting the period after the one containing (local date of ``at``) + months."""
    _require_aware(at)
    shifted = add_months(at.astimezone(tz).date(), months)
    return local_to_utc(datetime.combine(next_period_start(shifted, period), time()), tz)


def lot_expiry(policy: ExpiryPolicy, earned_at: datetime, tz_name: str) -> datetime | None:
    """The expiry instant of points earned at ``earned_at``; None when lots carry no own date."""
    tz = ZoneInfo(tz_name)
    if policy.kind == "after_earning":
        return shift_months(earned_at, policy.months, tz)
    if policy.kind == "end_of_period":
        return end_of_period(earned_at, policy.months, policy.period, tz)
    return None


def inactivity_deadline(policy: ExpiryPolicy, last_activity_at: datetime | None, tz_name: str) -> datetime | None:
    """after_inactivity: when all points expire if nothing happens before; None for other policies."""
    if policy.kind != "after_inactivity" or last_activity_at is None:
        return None
    return shift_months(last_activity_at, policy.months, ZoneInfo(tz_name))


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def warning_due(expires_at: datetime | None, now: datetime, warning_days: int) -> bool:
    """Whether an expiry falls inside the warning horizon (and has not happened yet)."""
    return expires_at is not None and now < expires_at <= now + timedelta(days=warning_days)
