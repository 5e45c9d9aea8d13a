"""Cron firing times evaluated in a time zone, correct across DST changes.

Cron expressions describe local wall-clock times. We iterate them on naive local time (so each local
time fires once), then map to UTC: a time skipped by a spring-forward gap fires at the equivalent
instant just after the gap, and a time repeated by a fall-back fires once, at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter


def validate_cron(expression: str) -> None:
    if not croniter.is_valid(expression):
        raise ValueError(f"invalid cron expression: {expression!r}")


def next_fire_time(expression: str, tz_name: str, after: datetime) -> datetime:
    """First firing strictly after the UTC instant ``after``, as an aware UTC datetime."""
    tz = ZoneInfo(tz_name)
    local_after = after.astimezone(tz).replace(tzinfo=None)
    # Local times inside a spring-forward gap map to instants *after* the gap: 02:30 in New York on
    # that day fires at 03:30 EDT. From 03:10 EDT, iterating from 03:10 local would skip it, so start
    # as far back as the most recent gap was wide (0 on most days); ``fire > after`` trims the rest.
    gap = _utc_offset(after, tz) - _utc_offset(after - timedelta(days=1), tz)
    iterator = croniter(expression, local_after - max(gap, timedelta(0)))
    while True:
        local_naive: datetime = iterator.get_next(datetime)
        fire = _to_utc(local_naive, tz)
        if fire > after:
            return fire


def _utc_offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None  # an aware datetime in a ZoneInfo always has one
    return offset


def _to_utc(local_naive: datetime, tz: ZoneInfo) -> datetime:
    # fold=0 picks the first of two repeated times (fall back) and, for a time skipped by a spring-
    # forward gap, the pre-gap offset, which lands just after the gap: "run once that time has passed".
    return local_naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
