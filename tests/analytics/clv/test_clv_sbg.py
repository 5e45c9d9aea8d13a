"""Shifted-beta-geometric model against Fader & Hardie (2007), "How to project customer retention".

Published (their Table 1 data, years 1-7 used for calibration):
  high end: survivors 1000, 869, 743, 653, 593, 551, 517, 491  ->  alpha = 0.668, beta = 3.806
  regular:  survivors 1000, 631, 468, 382, 326, 289, 262, 241  ->  alpha = 0.704, beta = 1.182
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from patronage.analytics.clv import CLVInputError, SurvivalCounts, TimeUnit, fit_sbg, sbg

HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]


def test_high_end_segment_matches_the_paper() -> None:
    params = fit_sbg(HIGH_END)
    assert params.alpha == pytest.approx(0.668, abs=5e-4)
    assert params.beta == pytest.approx(3.806, abs=5e-4)
    assert params.time_unit is TimeUnit.YEARS
    assert params.n_customers == 1000


def test_regular_segment_matches_the_paper() -> None:
    params = fit_sbg(REGULAR)
    assert params.alpha == pytest.approx(0.704, abs=5e-4)
    assert params.beta == pytest.approx(1.182, abs=5e-4)


def test_projection_reproduces_the_calibration_data() -> None:
    params = fit_sbg(HIGH_END)
    fitted = 1000 * sbg.survival(params, np.arange(8))
    np.testing.assert_allclose(fitted, HIGH_END, atol=20)  # a two-parameter curve through eight points
    # Retention rates rise with tenure (the heterogeneity story), and S(t) = prod r(i).
    rates = sbg.retention_rate(params, np.arange(1, 13))
    assert np.all(np.diff(rates) > 0)
    np.testing.assert_allclose(np.cumprod(rates), sbg.survival(params, np.arange(1, 13)), rtol=1e-12)
    pmf = sbg.churn_probability(params, np.arange(1, 2000))
    assert pmf.sum() + float(sbg.survival(params, 1999)) == pytest.approx(1.0, abs=1e-12)


def test_individual_durations_give_the_same_fit_as_the_cohort_series() -> None:
    survivors = np.array(REGULAR)
    churned = -np.diff(survivors)
    periods = np.concatenate([np.repeat(np.arange(1, 8), churned), np.full(survivors[-1], 7)])
    active = np.concatenate([np.zeros(churned.sum(), dtype=bool), np.ones(survivors[-1], dtype=bool)])
    a = fit_sbg(SurvivalCounts.from_durations(periods, active))
    b = fit_sbg(REGULAR)
    assert a.alpha == pytest.approx(b.alpha, rel=1e-8)
    assert a.beta == pytest.approx(b.beta, rel=1e-8)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-12)


def test_derl_closed_form_equals_the_discounted_sum() -> None:
    params = fit_sbg(HIGH_END)
    d = 0.10
    renewals = np.array([0, 1, 4, 7])
    closed = sbg.discounted_expected_residual_lifetime(params, d, renewals)
    k = np.arange(0, 4000)
    for n_minus_1, value in zip(renewals, closed, strict=True):
        n = n_minus_1 + 1
        brute = np.sum(sbg.survival(params, n + k) / sbg.survival(params, n - 1) / (1 + d) ** k)
        assert value == pytest.approx(brute, rel=1e-10)
    # Cross-check with the worked example of the independent jdmaturen/shifted_beta_geometric_py README
    # (high-end data, 10% discount, 7 renewals made): 7.530.
    assert float(closed[3]) == pytest.approx(7.530, abs=5e-4)


def test_gradient_matches_finite_differences() -> None:
    data = SurvivalCounts.from_survivors(REGULAR)
    rng = np.random.default_rng(2007)
    for _ in range(12):
        theta = rng.uniform(-4.0, 4.0, size=2)
        err = check_grad(
            lambda th: sbg.loglik_and_grad(th, data)[0] / 1000,
            lambda th: sbg.loglik_and_grad(th, data)[1] / 1000,
            theta,
            epsilon=1e-7,
        )
        assert err < 2e-5, (np.exp(theta), err)
    for corner in ([-25.0, -25.0], [25.0, 25.0], [25.0, -25.0], [-25.0, 25.0]):
        value, grad = sbg.loglik_and_grad(np.array(corner), data)
        assert np.isfinite(value)
        assert np.all(np.isfinite(grad))


def test_bad_survivor_series_are_refused() -> None:
    with pytest.raises(CLVInputError):
        fit_sbg([1000, 1100, 900])
    with pytest.raises(CLVInputError):
        fit_sbg([1000])
