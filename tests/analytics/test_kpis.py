"""KPI formulas on the hand-checked history of tests/analytics/dataset.py (month periods, 31-day window).

Working by hand (S = active at the month's start, E = active at its end, N = new in the month):
  Jan: orders c1 100, c2 30.                      S=0 E=2 N=2
  Feb: orders c1 50, c3 20.                       S=2 (c1,c2) E=2 (c1,c3) N=1 (c3)
  Mar: orders c1 10, c2 15, c3 25, c4 40+60.      S=2 (c1,c3) E=4 N=1 (c4); c2 comes back after a gap,
       so E - N counts her although she was not in S: CRR = (4-1)/2 = 1.5 (the textbook formula's known
       overstatement with resurrected customers; the lifecycle composition separates them).
"""

from __future__ import annotations

from typing import Any

import pytest

from patronage.analytics.calendar import Period
from patronage.analytics.compute import Computed, compute_all
from patronage.analytics.engine import DuckEngine
from tests.analytics import dataset


@pytest.fixture(scope="module")
def computed() -> Computed:
    store = dataset.build_store()
    return compute_all(DuckEngine(store), dataset.options())


def series(computed: Computed, kpi: str, breakdown: str = "all", period: str = "month") -> dict[str, Any]:
    return computed.results[f"kpi/{period}/{breakdown}/{kpi}"]["groups"]


def approx(values: list[float | None]) -> list[Any]:
    return [None if v is None else pytest.approx(v, rel=1e-9) for v in values]


def test_period_labels(computed: Computed) -> None:
    payload = computed.results["kpi/month/all/orders"]
    assert payload["labels"] == ["2024-01", "2024-02", "2024-03"]
    assert payload["partial"] == [False, False, False]


def test_counts(computed: Computed) -> None:
    assert series(computed, "orders")["all"] == [2, 2, 5]
    assert series(computed, "revenue")["all"] == [130, 70, 150]
    assert series(computed, "active_customers")["all"] == [2, 2, 4]
    assert series(computed, "new_customers")["all"] == [2, 1, 1]


def test_retention_churn_growth(computed: Computed) -> None:
    assert series(computed, "customer_retention_rate")["all"] == approx([None, 0.5, 1.5])
    assert series(computed, "churn_rate")["all"] == approx([None, 0.5, -0.5])
    assert series(computed, "customer_growth_rate")["all"] == approx([None, 0.0, 1.0])


def test_repeat_rate_frequency_aov(computed: Computed) -> None:
    # customers with >= 2 orders by the month's end / customers with >= 1: 0/2, 1/3 (c1), 4/4
    assert series(computed, "repeat_purchase_rate")["all"] == approx([0.0, 1 / 3, 1.0])
    assert series(computed, "purchase_frequency")["all"] == approx([1.0, 1.0, 5 / 4])
    assert series(computed, "average_order_value")["all"] == approx([65.0, 35.0, 30.0])


def test_revenue_churn(computed: Computed) -> None:
    # Feb: of Jan's buyers only c1 bought again (50 of Jan's 130); Mar: Feb's buyers c1 + c3 spent 35 of 70.
    assert series(computed, "revenue_churn")["all"] == approx([None, 1 - 50 / 130, 0.5])


def test_historical_clv(computed: Computed) -> None:
    # Feb: year revenue 200 / 3 customers active in the year to Mar 1; lifespans 31, 0, 0 days.
    # Mar: 350 / 4; lifespans c1 64, c2 65, c3 31, c4 5 days -> 41.25 days on average.
    feb = (200 / 3) * (31 / 3) / 365.25
    mar = (350 / 4) * 41.25 / 365.25
    assert series(computed, "historical_clv")["all"] == approx([0.0, feb, mar])


def test_retention_cost(computed: Computed) -> None:
    # Rewards redeemed: 5.00 in March; retained customers E - N = 3; messaging costs nothing yet.
    assert series(computed, "retention_cost")["all"] == approx([None, 0.0, 5 / 3])


def test_satisfaction_slots_are_not_available(computed: Computed) -> None:
    nps = computed.results["kpi/month/all/nps"]
    assert nps["groups"]["all"] == [None, None, None]
    assert nps["note"] == "not available until feedback"


def test_breakdown_by_channel_and_tier(computed: Computed) -> None:
    aov = series(computed, "average_order_value", "channel")
    assert aov["web"] == approx([100.0, 35.0, 17.5])  # c1 and c3
    assert aov["store"] == approx([30.0, None, 115 / 3])  # c2 and c4
    crr = series(computed, "customer_retention_rate", "channel")
    assert crr["web"] == approx([None, 1.0, 1.0])  # Feb: S={c1} E={c1,c3} N={c3}: (2-1)/1
    by_tier = series(computed, "average_order_value", "tier")
    assert by_tier["gold"] == approx([100.0, 50.0, 10.0])
    assert by_tier["silver"] == approx([None, None, 50.0])
    assert by_tier["non_member"] == approx([30.0, 20.0, 20.0])
    members = series(computed, "average_order_value", "membership")
    assert members["member"] == approx([100.0, 50.0, 110 / 3])


def test_breakdown_by_cohort_and_segment(computed: Computed) -> None:
    active = series(computed, "active_customers", "cohort")
    assert active == {"2024-01": [2, 1, 2], "2024-02": [0, 1, 1], "2024-03": [0, 0, 1]}
    vip = series(computed, "orders", "segment")  # segment 10 "VIP" = c1, c2
    assert vip == {"VIP": [2, 1, 2]}


def test_weekly_and_daily_periods_add_up() -> None:
    store = dataset.build_store()
    out = compute_all(DuckEngine(store), dataset.options(kpi_periods=(Period.WEEK, Period.DAY),
                                                           cohort_periods=(Period.WEEK,)))
    weekly = out.results["kpi/week/all/orders"]
    assert sum(weekly["groups"]["all"]) == 9
    assert weekly["labels"][0] == "2024-W01"
    daily = out.results["kpi/day/all/active_customers"]
    assert daily["labels"][0] == "2024-01-05" and daily["labels"][-1] == "2024-03-31"
    assert sum(daily["groups"]["all"]) == 9  # one customer per order day here
    # Active at the start of 2024-02-05 (window 31 days): c1 (Jan 5), c2 (Jan 20), c3 (Feb 1).
    crr = out.results["kpi/day/all/customer_retention_rate"]["groups"]["all"]
    index = daily["labels"].index("2024-02-05")
    # That day: S=3; at its end c1 (Jan 5 + 31 = Feb 5: gone), c2, c3 and c1's new order -> E=3, N=0.
    assert crr[index] == pytest.approx(1.0)
