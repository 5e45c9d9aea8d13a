"""Expiry policies as pure functions: month ends, leap years, DST gaps and folds, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patronage.ledger.expiry_rules import (
    ExpiryPolicy,
    add_months,
    end_of_period,
    inactivity_deadline,
    lot_expiry,
    shift_months,
    warning_due,
)

NY = ZoneInfo("America/New_York")
LISBON = "Europe/Lisbon"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year clamp
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 3, 31), 1, date(2024, 4, 30)),
        (date(2024, 11, 15), 3, date(2025, 2, 15)),  # year roll-over
        (date(2024, 5, 10), -5, date(2023, 12, 10)),
        (date(2024, 8, 31), 0, date(2024, 8, 31)),
    ],
)
def test_add_months_clamps_to_month_end(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_never_policy_has_no_expiry() -> None:
    assert lot_expiry(ExpiryPolicy("never"), utc(2024, 1, 1), "UTC") is None


def test_after_earning_keeps_local_wall_clock_across_dst() -> None:
    # 10:00 in Lisbon in January (UTC+0) -> 10:00 in July (UTC+1) = 09:00 UTC.
    earned = utc(2024, 1, 15, 10)
    expires = lot_expiry(ExpiryPolicy("after_earning", months=6), earned, LISBON)
    assert expires == utc(2024, 7, 15, 9)


def test_after_earning_uses_the_local_date_not_the_utc_date() -> None:
    # 2024-01-31 23:30 in New York is already 2024-02-01 in UTC: the local date (31 Jan) counts.
    earned = datetime(2024, 1, 31, 23, 30, tzinfo=NY).astimezone(UTC)
    expires = lot_expiry(ExpiryPolicy("after_earning", months=1), earned, "America/New_York")
    assert expires is not None
    assert expires.astimezone(NY).date() == date(2024, 2, 29)
    assert expires.astimezone(NY).hour == 23


def test_a_time_in_a_dst_gap_moves_forward_by_the_gap() -> None:
    # 02:30 on 10 March 2024 does not exist in New York (02:00 -> 03:00).
    earned = datetime(2024, 2, 10, 2, 30, tzinfo=NY).astimezone(UTC)
    expires = shift_months(earned, 1, NY)
    local = expires.astimezone(NY)
    assert (local.month, local.day, local.hour, local.minute) == (3, 10, 3, 30)


def test_a_repeated_time_takes_its_first_occurrence() -> None:
    # 01:30 on 3 November 2024 happens twice in New York; the first one is EDT (UTC-4).
    earned = datetime(2024, 10, 3, 1, 30, tzinfo=NY).astimezone(UTC)
    assert shift_months(earned, 1, NY) == utc(2024, 11, 3, 5, 30)


@pytest.mark.parametrize(
    ("period", "months", "expected_local"),
    [
        ("month", 0, datetime(2024, 4, 1)),
        ("month", 12, datetime(2025, 4, 1)),
        ("quarter", 0, datetime(2024, 4, 1)),
        ("quarter", 1, datetime(2024, 7, 1)),
        ("year", 0, datetime(2025, 1, 1)),
        ("year", 12, datetime(2026, 1, 1)),
    ],
)
def test_end_of_period_is_local_midnight_starting_the_next_period(
    period: str, months: int, expected_local: datetime
) -> None:
    earned = utc(2024, 3, 15, 12)
    expires = end_of_period(earned, months, period, ZoneInfo(LISBON))  # type: ignore[arg-type]
    assert expires == expected_local.replace(tzinfo=ZoneInfo(LISBON)).astimezone(UTC)


def test_end_of_month_after_a_dst_change_is_midnight_local_time() -> None:
    # End of March 2024 in Lisbon: the clocks went forward on 31 March, so midnight 1 April is 23:00 UTC.
    expires = lot_expiry(ExpiryPolicy("end_of_period", months=0, period="month"), utc(2024, 3, 5), LISBON)
    assert expires == utc(2024, 3, 31, 23)


def test_end_of_year_for_an_earning_on_new_years_eve_local() -> None:
    # 31 Dec 2024 20:00 in New York is 1 Jan 2025 in UTC; the local year (2024) counts.
    earned = datetime(2024, 12, 31, 20, tzinfo=NY).astimezone(UTC)
    expires = lot_expiry(ExpiryPolicy("end_of_period", months=0, period="year"), earned, "America/New_York")
    assert expires == datetime(2025, 1, 1, tzinfo=NY).astimezone(UTC)


def test_inactivity_deadline_only_for_that_policy() -> None:
    last = utc(2024, 5, 31, 8)
    assert inactivity_deadline(ExpiryPolicy("after_inactivity", months=3), last, "UTC") == utc(2024, 8, 31, 8)
    assert inactivity_deadline(ExpiryPolicy("after_earning", months=3), last, "UTC") is None
    assert inactivity_deadline(ExpiryPolicy("after_inactivity", months=3), None, "UTC") is None


def test_warning_window() -> None:
    now = utc(2024, 1, 1)
    assert warning_due(now + timedelta(days=10), now, 30)
    assert not warning_due(now + timedelta(days=31), now, 30)
    assert not warning_due(now, now, 30)  # already expired: no warning
    assert not warning_due(None, now, 30)


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError, match="policy"):
        ExpiryPolicy("sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="period"):
        ExpiryPolicy("end_of_period", period="week")  # type: ignore[arg-type]


zones = st.sampled_from(["UTC", "Europe/Lisbon", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@given(at=instants, months=st.integers(min_value=0, max_value=60), tz=zones)
def test_expiry_is_never_before_earning_and_lands_on_a_plausible_day(at: datetime, months: int, tz: str) -> None:
    expires = lot_expiry(ExpiryPolicy("after_earning", months=months), at, tz)
    assert expires is not None
    assert expires >= at - timedelta(hours=1)  # a DST fold may move the same wall clock back an hour
    local_in, local_out = at.astimezone(ZoneInfo(tz)), expires.astimezone(ZoneInfo(tz))
    assert local_out.day <= local_in.day or local_out.day == add_months(local_in.date(), months).day


@given(at=instants, months=st.integers(min_value=0, max_value=36), tz=zones,
       period=st.sampled_from(["month", "quarter", "year"]))
def test_end_of_period_is_a_local_midnight_after_the_earning(at: datetime, months: int, tz: str, period: str) -> None:
    expires = lot_expiry(ExpiryPolicy("end_of_period", months=months, period=period), at, tz)  # type: ignore[arg-type]
    assert expires is not None and expires > at
    local = expires.astimezone(ZoneInfo(tz))
    assert local.day == 1
    assert (local.hour, local.minute) == (0, 0) or tz == "Australia/Lord_Howe"  # a midnight gap moves on
