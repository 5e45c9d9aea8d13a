"""Cron firing times across DST changes: a daily local time fires exactly once on the change day."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patronage.kit.jobs.cron import next_fire_time, validate_cron


def fires_between(cron: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    fires, cursor = [], start
    while (cursor := next_fire_time(cron, tz, cursor)) < end:
        fires.append(cursor)
    return fires


def local_day(tz: str, day: date) -> tuple[datetime, datetime]:
    """The UTC bounds of a local calendar day (23 or 25 hours long on change days)."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


# (zone, change day, local time, expected firing in UTC). Lisbon: WET/WEST, changes at 01:00 UTC;
# New York: EST/EDT, changes at 02:00 local. A time skipped by spring-forward fires just after the gap;
# a time repeated by fall-back fires at its first occurrence.
CASES = [
    ("Europe/Lisbon", date(2024, 3, 31), "01:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # skipped
    ("Europe/Lisbon", date(2024, 3, 31), "02:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # 02:30 WEST
    ("Europe/Lisbon", date(2024, 10, 27), "01:30", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),  # 1st of two
    ("Europe/Lisbon", date(2024, 10, 27), "02:30", datetime(2024, 10, 27, 2, 30, tzinfo=UTC)),
    ("America/New_York", date(2024, 3, 10), "01:30", datetime(2024, 3, 10, 6, 30, tzinfo=UTC)),
    ("America/New_York", date(2024, 3, 10), "02:30", datetime(2024, 3, 10, 7, 30, tzinfo=UTC)),  # skipped
    ("America/New_York", date(2024, 11, 3), "01:30", datetime(2024, 11, 3, 5, 30, tzinfo=UTC)),  # 1st of two
    ("America/New_York", date(2024, 11, 3), "02:30", datetime(2024, 11, 3, 7, 30, tzinfo=UTC)),
]


@pytest.mark.parametrize(("tz", "day", "at", "expected"), CASES)
def test_daily_job_fires_once_on_dst_change_day(tz: str, day: date, at: str, expected: datetime) -> None:
    hour, minute = at.split(":")
    cron = f"{int(minute)} {int(hour)} * * *"
    start, end = local_day(tz, day)
    assert fires_between(cron, tz, start - timedelta(seconds=1), end) == [expected]
    # ...and once on each neighbouring day, at the ordinary local time.
    for neighbour in (day - timedelta(days=1), day + timedelta(days=1)):
        n_start, n_end = local_day(tz, neighbour)
        (fire,) = fires_between(cron, tz, n_start - timedelta(seconds=1), n_end)
        assert fire.astimezone(ZoneInfo(tz)).strftime("%H:%M") == at


@pytest.mark.parametrize(("tz", "day", "at", "expected"), CASES)
def test_firing_is_stable_from_any_point_of_the_day(tz: str, day: date, at: str, expected: datetime) -> None:
    # A worker computing the next firing from any instant before it (e.g. inside the repeated hour)
    # lands on the same single firing, never on a second occurrence.
    hour, minute = at.split(":")
    cron = f"{int(minute)} {int(hour)} * * *"
    start, _ = local_day(tz, day)
    probe = start - timedelta(minutes=1)
    while probe < expected:
        assert next_fire_time(cron, tz, probe) == expected
        probe += timedelta(minutes=10)
    assert next_fire_time(cron, tz, expected) > expected + timedelta(hours=20)


def test_hourly_job_never_fires_twice_at_one_instant_across_dst() -> None:
    tz = "America/New_York"
    spring = fires_between("30 * * * *", tz, *local_day(tz, date(2024, 3, 10)))
    fall = fires_between("30 * * * *", tz, *local_day(tz, date(2024, 11, 3)))
    assert len(spring) == len(set(spring)) == 23  # 23-hour day; the skipped 02:30 becomes 03:30 EDT
    assert len(fall) == len(set(fall)) == 24  # each local :30 once; the repeated 01:30 fires once
    assert all(b - a >= timedelta(hours=1) for a, b in itertools.pairwise(spring))


def test_utc_schedule_and_validation() -> None:
    after = datetime(2024, 3, 31, 0, 0, tzinfo=UTC)
    assert next_fire_time("17 3 * * *", "UTC", after) == datetime(2024, 3, 31, 3, 17, tzinfo=UTC)
    validate_cron("*/5 * * * *")
    with pytest.raises(ValueError, match="invalid cron"):
        validate_cron("61 * * * *")


CHANGE_DAYS = {
    "Europe/Lisbon": [date(2024, 3, 31), date(2024, 10, 27)],
    "America/New_York": [date(2024, 3, 10), date(2024, 11, 3)],
}


@settings(max_examples=100, deadline=None)
@given(
    tz=st.sampled_from(sorted(CHANGE_DAYS)),
    which=st.integers(0, 1),
    hour=st.integers(0, 4),
    minute=st.sampled_from([0, 15, 30, 59]),
    offset_minutes=st.integers(-36 * 60, 36 * 60),
)
def test_next_fire_time_is_the_earliest_firing_after_any_instant(
    tz: str, which: int, hour: int, minute: int, offset_minutes: int
) -> None:
    """Oracle: the firings of a daily job are its local time on each day mapped to UTC (fold=0)."""
    day = CHANGE_DAYS[tz][which]
    zone = ZoneInfo(tz)
    firings = sorted(
        datetime(d.year, d.month, d.day, hour, minute, tzinfo=zone).astimezone(UTC)
        for d in (day + timedelta(days=k) for k in range(-3, 4))
    )
    after = datetime(day.year, day.month, day.day, 12, tzinfo=UTC) + timedelta(minutes=offset_minutes)
    expected = min(f for f in firings if f > after)
    assert next_fire_time(f"{minute} {hour} * * *", tz, after) == expected
