"""Pure tier rules: ladder, windows in the workspace's time zone, reviews, decisions, progress, simulation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from patronage.tiers.rules import (
    DowngradePolicy,
    Ladder,
    Metric,
    TierRule,
    Window,
    current_window_start,
    describe_gap,
    downgrade_target,
    grace_end,
    keeps_tier,
    next_review,
    progress,
    simulate_tiers,
    upgrade_to,
    window_start,
)

BERLIN = ZoneInfo("Europe/Berlin")
BRONZE, SILVER, GOLD, PLATINUM = (TierRule(1, "Bronze", Decimal(0)), TierRule(2, "Silver", Decimal(200)),
                                  TierRule(3, "Gold", Decimal(500)), TierRule(4, "Platinum", Decimal(1000)))
LADDER = Ladder([PLATINUM, BRONZE, GOLD, SILVER])  # any order in, ordered by threshold


def test_ladder_orders_by_threshold_and_finds_the_qualified_tier() -> None:
    assert [t.name for t in LADDER.tiers] == ["Bronze", "Silver", "Gold", "Platinum"]
    assert LADDER.qualified(Decimal("499.99")) == SILVER
    assert LADDER.qualified(Decimal(500)) == GOLD
    assert LADDER.qualified(Decimal(10**6)) == PLATINUM
    assert LADDER.base() == BRONZE
    assert LADDER.rank(None) == -1 and LADDER.rank(99) == -1
    assert LADDER.step_below(GOLD.id) == SILVER and LADDER.step_below(BRONZE.id) is None
    assert LADDER.next_above(PLATINUM.id) is None and LADDER.next_above(None) == BRONZE


def test_a_ladder_without_a_zero_tier_has_no_base() -> None:
    ladder = Ladder([SILVER, GOLD])
    assert ladder.base() is None
    assert ladder.qualified(Decimal(100)) is None


def test_calendar_year_window_is_taken_in_the_workspace_time_zone() -> None:
    # 2025-12-31 23:30 UTC is already 2026 in Berlin.
    now = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    assert current_window_start(Window.CALENDAR_YEAR, now, BERLIN) == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    # A review at local midnight on 1 January looks back at the year that just closed.
    review = datetime(2026, 1, 1, tzinfo=BERLIN)
    assert window_start(Window.CALENDAR_YEAR, review, BERLIN) == datetime(2025, 1, 1, tzinfo=BERLIN)
    assert window_start(Window.LIFETIME, review, BERLIN) is None
    assert current_window_start(Window.LIFETIME, now, BERLIN) is None


def test_rolling_window_is_twelve_calendar_months() -> None:
    end = datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert window_start(Window.ROLLING_12_MONTHS, end, ZoneInfo("UTC")) == datetime(2024, 3, 31, 12, tzinfo=UTC)
    leap = datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert current_window_start(Window.ROLLING_12_MONTHS, leap, ZoneInfo("UTC")) == datetime(2023, 2, 28, 12,
                                                                                             tzinfo=UTC)


def test_next_review_dates() -> None:
    entered = datetime(2025, 6, 15, 10, tzinfo=UTC)
    assert next_review(Window.CALENDAR_YEAR, entered, BERLIN) == datetime(2026, 1, 1, tzinfo=BERLIN)
    assert next_review(Window.LIFETIME, entered, BERLIN) == datetime(2026, 1, 1, tzinfo=BERLIN)
    assert next_review(Window.ROLLING_12_MONTHS, entered, BERLIN, anchor=entered) == datetime(2026, 6, 15, 10,
                                                                                              tzinfo=UTC)
    # Late by more than a year: the next anniversary after ``after``.
    late = datetime(2027, 7, 1, tzinfo=UTC)
    assert next_review(Window.ROLLING_12_MONTHS, late, BERLIN, anchor=entered) == datetime(2028, 6, 15, 10,
                                                                                            tzinfo=UTC)
    assert grace_end(entered, 30) == entered + timedelta(days=30)


def test_upgrade_is_only_upwards() -> None:
    assert upgrade_to(LADDER, SILVER.id, Decimal(700)) == GOLD
    assert upgrade_to(LADDER, GOLD.id, Decimal(700)) is None
    assert upgrade_to(LADDER, PLATINUM.id, Decimal(0)) is None
    assert upgrade_to(LADDER, None, Decimal(0)) == BRONZE
    assert keeps_tier(LADDER, GOLD.id, Decimal(500)) and not keeps_tier(LADDER, GOLD.id, Decimal(499))


def test_downgrade_policies() -> None:
    drop, qualified = DowngradePolicy.DROP_ONE, DowngradePolicy.QUALIFIED
    # Platinum member who only qualifies for Bronze at the review.
    assert downgrade_target(LADDER, PLATINUM.id, BRONZE.id, BRONZE.id, drop) == GOLD.id
    assert downgrade_target(LADDER, PLATINUM.id, BRONZE.id, BRONZE.id, qualified) == BRONZE.id
    # Requalified during grace (current window): no downgrade at all.
    assert downgrade_target(LADDER, PLATINUM.id, BRONZE.id, PLATINUM.id, qualified) == PLATINUM.id
    # Partly requalified: never below what they qualify for now.
    assert downgrade_target(LADDER, PLATINUM.id, BRONZE.id, GOLD.id, qualified) == GOLD.id
    # Drop-one never goes below the qualified tier either (it is already one below).
    assert downgrade_target(LADDER, GOLD.id, SILVER.id, None, drop) == SILVER.id
    # Without a base tier a customer can drop to no tier.
    assert downgrade_target(Ladder([GOLD]), GOLD.id, None, None, qualified) is None


@given(
    current=st.sampled_from([1, 2, 3, 4]),
    at_review=st.sampled_from([None, 1, 2, 3, 4]),
    now=st.sampled_from([None, 1, 2, 3, 4]),
    policy=st.sampled_from(list(DowngradePolicy)),
)
def test_downgrade_target_stays_between_qualified_and_current(
    current: int, at_review: int | None, now: int | None, policy: DowngradePolicy
) -> None:
    target = downgrade_target(LADDER, current, at_review, now, policy)
    floor = max(LADDER.rank(at_review), LADDER.rank(now))
    assert LADDER.rank(target) <= LADDER.rank(current)
    assert LADDER.rank(target) >= min(floor, LADDER.rank(current))
    if policy is DowngradePolicy.DROP_ONE:
        assert LADDER.rank(target) >= LADDER.rank(current) - 1


def test_progress_to_next_and_to_keep() -> None:
    review = datetime(2026, 1, 1, tzinfo=UTC)
    p = progress(LADDER, Metric.SPEND, GOLD.id, Decimal(380), review_at=review)
    assert (p.next_tier_id, p.to_next) == (PLATINUM.id, Decimal(620))
    assert (p.keep_threshold, p.to_keep, p.review_at) == (Decimal(500), Decimal(120), review)
    top = progress(LADDER, Metric.SPEND, PLATINUM.id, Decimal(1500))
    assert top.next_tier_id is None and top.to_next is None and top.to_keep == 0
    none = progress(Ladder([SILVER]), Metric.ORDERS, None, Decimal(1))
    assert none.next_tier_id == SILVER.id and none.keep_threshold is None


def test_describe_gap_speaks_the_metric_unit() -> None:
    assert describe_gap(Metric.SPEND, Decimal(120), "EUR") == "120.00 EUR"
    assert describe_gap(Metric.POINTS_EARNED, Decimal("349.2"), "EUR") == "350 points"
    assert describe_gap(Metric.ORDERS, Decimal(1), "EUR") == "1 order"


def test_simulate_tiers_counts_every_tier() -> None:
    metrics = {"a": Decimal(0), "b": Decimal(250), "c": 600, "d": Decimal(5000), "e": Decimal(499)}
    assert simulate_tiers([BRONZE, SILVER, GOLD, PLATINUM], metrics) == {1: 1, 2: 2, 3: 1, 4: 1, None: 0}
    # A stricter ladder (Gold at 700) moves one customer down: the backtest compares key by key.
    stricter = [BRONZE, SILVER, TierRule(3, "Gold", Decimal(700)), PLATINUM]
    assert simulate_tiers(stricter, metrics) == {1: 1, 2: 3, 3: 0, 4: 1, None: 0}
    assert simulate_tiers([SILVER], {"x": Decimal(10)}) == {2: 0, None: 1}
