"""Holt's forecast, goal progress arithmetic, and the CLV scoring wired to analytics.clv."""

from __future__ import annotations

import numpy as np
import pytest

from patronage.analytics.calendar import Period
from patronage.analytics.forecast import fit_holt
from patronage.analytics.goals import _periods_between
from patronage.analytics.scoring import predict


def test_holt_recovers_a_straight_line() -> None:
    fit = fit_holt([2.0, 5.0, 8.0, 11.0, 14.0])
    assert fit is not None and fit.sse == pytest.approx(0.0)
    assert fit.forecast(3) == pytest.approx(23.0)


def test_holt_needs_three_points_and_skips_gaps() -> None:
    assert fit_holt([1.0, None, 2.0]) is None  # type: ignore[list-item]
    fit = fit_holt([0.30, 0.31, None, 0.33, 0.32, 0.34])  # type: ignore[list-item]
    assert fit is not None and 0.3 < fit.forecast(1) < 0.4
    assert 0.05 <= fit.alpha <= 0.95 and 0.05 <= fit.beta <= 0.95


def test_periods_between() -> None:
    from datetime import date

    assert _periods_between(date(2024, 3, 1), date(2024, 6, 30), Period.MONTH) == 3
    assert _periods_between(date(2024, 3, 1), date(2024, 3, 15), Period.MONTH) == 0
    assert _periods_between(date(2024, 3, 1), date(2024, 2, 1), Period.MONTH) == -1


def test_clv_predictions_reproduce_the_cdnow_fit() -> None:
    """Our day-count inputs, converted to weeks, give Fader, Hardie & Lee's (2005) CDNOW estimates."""
    from patronage.analytics.clv.datasets import load_cdnow
    from patronage.analytics.clv.transactions import daily_purchases

    log = load_cdnow("sample")
    end = np.datetime64("1997-09-30", "D")
    keep = log.date <= end
    daily = daily_purchases(log.customer_id[keep], log.date[keep], log.amount[keep])
    assert daily.amount is not None
    n = daily.customer_ids.size
    days = daily.day.astype(np.int64)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, daily.customer, days)
    np.maximum.at(last, daily.customer, days)
    count = np.bincount(daily.customer, minlength=n)
    first_amount = np.zeros(n)
    first_amount[daily.customer[~daily.is_repeat]] = daily.amount[~daily.is_repeat]
    total = np.bincount(daily.customer, weights=daily.amount, minlength=n)
    out, summary = predict(count - 1, last - first, end.astype(np.int64) - first, total - first_amount,
                           horizon_months=12, discount_rate=0.1)
    assert summary.fitted and out is not None and summary.bgnbd is not None
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert summary.bgnbd[name] == pytest.approx(value, abs=2e-3), name
    assert np.all((out["p_alive"] > 0) & (out["p_alive"] <= 1))
    assert np.all(out["expected_purchases_90d"] >= 0) and np.all(out["expected_clv"] >= 0)
    assert float(out["expected_clv"].mean()) > 0


def test_too_little_history_leaves_predictions_empty() -> None:
    out, summary = predict(np.array([0, 1]), np.array([0, 3]), np.array([10, 20]), np.array([0.0, 5.0]),
                           horizon_months=12, discount_rate=0.1)
    assert out is None and not summary.fitted and summary.reason
