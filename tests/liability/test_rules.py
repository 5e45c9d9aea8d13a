"""Pure liability arithmetic: valuation, age buckets, the breakage estimator, reconciliation."""

from __future__ import annotations

from decimal import Decimal

from patronage.liability.rules import (
    AGE_BUCKETS,
    Cohort,
    Reconciliation,
    bucket_index,
    estimate_breakage,
    movements_by_name,
    net_of_breakage,
    value,
)


def test_value_rounds_to_the_cent() -> None:
    assert value(12345, Decimal("0.01")) == Decimal("123.45")
    assert value(3, Decimal("0.005")) == Decimal("0.02")  # 0.015 rounds half up
    assert value(-100, Decimal("0.01")) == Decimal("-1.00")


def test_age_buckets_cover_every_age() -> None:
    assert [bucket_index(d) for d in (0, 90, 91, 180, 181, 365, 366, 730, 731, 5000)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert bucket_index(-3) == 0
    assert AGE_BUCKETS[-1].max_days is None


def closed(month: str, expired: int, redeemed: int, reversed_: int = 0) -> Cohort:
    return Cohort(month, issued=expired + redeemed + reversed_, redeemed=redeemed, expired=expired,
                  reversed=reversed_, remaining=0)


def test_breakage_is_expired_over_expired_plus_redeemed_on_closed_cohorts() -> None:
    cohorts = [
        closed("2024-01", expired=300, redeemed=700, reversed_=500),  # reversals count on neither side
        closed("2024-02", expired=100, redeemed=900),
        closed("2024-03", expired=200, redeemed=800),
        Cohort("2024-04", issued=1000, redeemed=100, expired=900, remaining=1),  # still open: ignored
    ]
    estimate = estimate_breakage(cohorts)
    assert estimate.method == "observed"
    assert estimate.rate == Decimal("0.2000")  # 600 / 3000
    assert (estimate.cohorts_used, estimate.points_resolved, estimate.expired, estimate.redeemed) == (3, 3000, 600,
                                                                                                      2400)


def test_breakage_tolerance_closes_nearly_resolved_cohorts() -> None:
    almost = Cohort("2024-04", issued=1000, redeemed=500, expired=495, remaining=5)
    assert not almost.closed()
    assert almost.closed(Decimal("0.01"))


def test_breakage_falls_back_without_enough_history() -> None:
    two = [closed("2024-01", 500, 500), closed("2024-02", 500, 500)]
    assert estimate_breakage(two, configured=Decimal("0.15")).method == "configured"
    assert estimate_breakage(two, configured=Decimal("0.15")).rate == Decimal("0.15")
    none = estimate_breakage(two)
    assert none.method == "none" and none.rate is None
    small = [closed(f"2024-0{i}", 1, 9) for i in range(1, 5)]  # enough cohorts, too few points
    assert estimate_breakage(small, min_points=1000).method == "none"


def test_refunds_net_out_of_redemptions() -> None:
    refunded = Cohort("2024-01", issued=1000, redeemed=-50, expired=1000, remaining=0)
    estimate = estimate_breakage([refunded] * 3, min_points=1)
    assert estimate.redeemed == 0 and estimate.rate == Decimal(1)


def test_net_of_breakage() -> None:
    assert net_of_breakage(Decimal("1000.00"), Decimal("0.2")) == Decimal("800.00")
    assert net_of_breakage(Decimal("1000.00"), None) == Decimal("1000.00")


def test_reconciliation() -> None:
    moves = movements_by_name({"earn": 1000, "spend": -300, "expire": -50, "release": 0, "custom": 7})
    assert moves["earned"] == 1000 and moves["redeemed"] == -300 and moves["adjusted"] == 0 and moves["custom"] == 7
    good = Reconciliation(opening=500, movements=moves, closing=1157)
    assert good.reconciles and good.difference == 0
    bad = Reconciliation(opening=500, movements=moves, closing=1150)
    assert not bad.reconciles and bad.difference == -7
