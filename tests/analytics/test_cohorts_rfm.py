"""Cohorts (both definitions), lifecycle composition, funnel, program impact and RFM, worked by hand on
tests/analytics/dataset.py."""

from __future__ import annotations

import duckdb
import pytest

from patronage.analytics import sql
from patronage.analytics.compute import Computed, compute_all
from patronage.analytics.engine import DuckEngine
from tests.analytics import dataset


@pytest.fixture(scope="module")
def computed() -> Computed:
    return compute_all(DuckEngine(dataset.build_store()), dataset.options())


def test_monthly_cohorts_both_definitions(computed: Computed) -> None:
    cohorts = {c["cohort"]: c for c in computed.results["cohorts/month"]["cohorts"]}
    jan, feb, mar = cohorts["2024-01"], cohorts["2024-02"], cohorts["2024-03"]
    # January cohort c1, c2: c1 buys in Feb and Mar, c2 skips Feb and comes back in Mar.
    assert jan["size"] == 2
    assert jan["customers"] == [2, 1, 2]  # returned *in* period n
    assert jan["customers_in_or_after"] == [2, 2, 2]  # returned in period n *or later*
    assert jan["revenue"] == [130, 50, 25]
    assert jan["revenue_in_or_after"] == [205, 75, 25]
    assert feb["customers"] == [1, 1] and feb["revenue"] == [20, 25] and feb["revenue_in_or_after"] == [45, 25]
    assert mar["customers"] == [1] and mar["revenue"] == [100]


def test_weekly_cohorts_exist(computed: Computed) -> None:
    weekly = computed.results["cohorts/week"]["cohorts"]
    assert weekly[0]["cohort"] == "2024-W01" and weekly[0]["size"] == 1  # c1, Friday 5 January
    assert sum(c["size"] for c in weekly) == 4


def test_lifecycle_composition(computed: Computed) -> None:
    lc = computed.results["lifecycle/month"]["customers"]
    assert lc["new"] == [2, 1, 1]
    assert lc["returning"] == [0, 1, 2]  # Feb: c1; Mar: c1, c3
    assert lc["resurrecting"] == [0, 0, 1]  # Mar: c2
    assert lc["dormant"] == [0, 1, 0]  # Feb: c2 bought in Jan, not in Feb


def test_funnel(computed: Computed) -> None:
    stages = {s["stage"]: s for s in computed.results["funnel"]["stages"]}
    # 6 profiles; c5's only order was cancelled; loyal = 3+ orders (c1); c1 also posted a review.
    assert [stages[s]["customers"] for s in ("prospect", "new", "active", "loyal", "advocate")] == [6, 4, 4, 1, 1]
    assert stages["loyal"]["dropped_from_previous"] == 3
    assert stages["new"]["conversion_from_previous"] == pytest.approx(4 / 6)


def test_program_impact(computed: Computed) -> None:
    impact = computed.results["program_impact"]
    members = impact["members_vs_non_members"]
    assert members["member"] == {"customers": 2, "orders": 5, "revenue": 260.0, "average_order_value": 52.0,
                                 "purchase_frequency": 2.5}
    assert members["non_member"]["average_order_value"] == pytest.approx(22.5)
    before, after = impact["before_after_joining"]["before"], impact["before_after_joining"]["after"]
    # c1 joined Feb 1 after one order (Jan 5, 27 days before); c4 joined Mar 1 before buying.
    assert before == {"orders": 1, "revenue": 100.0, "exposure_days": 27, "average_order_value": 100.0,
                      "orders_per_30_days": pytest.approx(30 / 27)}
    assert after["orders"] == 4 and after["exposure_days"] == 60 + 31
    assert after["average_order_value"] == pytest.approx(40.0)


def test_rfm_quintiles_and_ties(computed: Computed) -> None:
    store = dataset.build_store()
    engine = DuckEngine(store)
    compute_all(engine, dataset.options(), only=["rfm"])
    rows = {r["customer_id"]: r for r in engine.query("SELECT * FROM rfm").to_pylist()}
    # Recency ranks (oldest last order first): c3 Mar 3, c1 Mar 9, c4 Mar 20, c2 Mar 25 -> 1, 2, 3, 4 of 4:
    # score = 1 + floor(5 (rank - 1) / 4) = 1, 2, 3, 4.
    assert {c: rows[c]["r"] for c in rows} == {3: 1, 1: 2, 4: 3, 2: 4}
    # Frequency 3, 2, 2, 2: the three tied customers share rank 1 (score 1); c1 has rank 4 (score 4).
    assert {c: rows[c]["f"] for c in rows} == {1: 4, 2: 1, 3: 1, 4: 1}
    # Monetary 160, 45, 45, 100: c2 and c3 tie at rank 1; c4 rank 3 (score 3), c1 rank 4 (score 4).
    assert {c: rows[c]["m"] for c in rows} == {1: 4, 2: 1, 3: 1, 4: 3}
    # FM = round half up((F + M) / 2): c1 4, c2 1, c3 1, c4 2.
    assert {c: rows[c]["segment"] for c in rows} == {
        1: "At risk", 2: "Promising", 3: "Lost", 4: "About to sleep",
    }
    assert rows[2]["recency_days"] == 6 and rows[1]["monetary"] == 160


def test_rfm_grid_payload(computed: Computed) -> None:
    rfm = computed.results["rfm"]
    assert sum(c["customers"] for c in rfm["grid"]) == 4
    assert {s["segment"]: s["customers"] for s in rfm["segments"]} == {
        "About to sleep": 1, "At risk": 1, "Lost": 1, "Promising": 1,
    }


# The documented score -> segment map (docs/analytics.md), rows R = 5..1, columns FM = 1..5.
SEGMENT_MAP = {
    5: ["New customers", "Potential loyalist", "Potential loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"],
    3: ["About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"],
    2: ["Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"],
    1: ["Lost", "Lost", "At risk", "At risk", "Can't lose them"],
}


def test_named_segment_map_covers_every_score() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE s AS SELECT r.r, f.f, m.m FROM range(1, 6) r(r), range(1, 6) f(f), range(1, 6) m(m)")
    rows = con.execute(f"SELECT r, f, m, {sql.RFM_SEGMENT_CASE} AS segment FROM s").fetchall()
    assert len(rows) == 125
    for r, f, m, segment in rows:
        fm = (f + m + 1) // 2
        assert segment == SEGMENT_MAP[r][fm - 1], (r, f, m)
    assert len({segment for *_, segment in rows}) == 11
