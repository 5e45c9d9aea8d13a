"""Gamma-Gamma spend model against Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".

Published on CDNOW (946 customers with repeat purchases in weeks 1-39, average value of their repeat
transactions): p = 6.25, q = 3.74, gamma = 15.44.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from patronage.analytics.clv import (
    CalibrationSummary,
    CLVInputError,
    conditional_expected_spend,
    fit_gamma_gamma,
    gammagamma,
)


def test_parameters_match_the_note(cdnow_summary: CalibrationSummary) -> None:
    params = fit_gamma_gamma(cdnow_summary.x, cdnow_summary.mean_spend)
    assert params.n_customers == 946
    assert params.p == pytest.approx(6.25, abs=5e-3)
    assert params.q == pytest.approx(3.74, abs=5e-3)
    assert params.gamma == pytest.approx(15.44, abs=5e-3)
    # The model's mean of the spend distribution is close to the observed average of the means ($35.08).
    assert params.population_mean_spend == pytest.approx(35.08, abs=0.15)


def test_conditional_expectation_shrinks_towards_the_population_mean(cdnow_summary: CalibrationSummary) -> None:
    params = fit_gamma_gamma(cdnow_summary.x, cdnow_summary.mean_spend)
    pop = params.population_mean_spend
    spends = conditional_expected_spend(params, [0, 1, 10, 1000], [999.0, 100.0, 100.0, 100.0])
    assert spends[0] == pytest.approx(pop)  # x = 0: the observed mean is ignored
    assert pop < spends[1] < spends[2] < spends[3] < 100.0
    assert spends[3] == pytest.approx(100.0, rel=1e-2)
    # The textbook weighted-average form.
    x, m = 4.0, 50.0
    weight = params.p * x / (params.p * x + params.q - 1)
    assert float(params.conditional_expected_spend(x, m)) == pytest.approx((1 - weight) * pop + weight * m)


def test_gradient_matches_finite_differences(cdnow_summary: CalibrationSummary) -> None:
    stats = gammagamma.SpendStats.from_arrays(cdnow_summary.x, cdnow_summary.mean_spend)
    n = float(stats.weight.sum())
    rng = np.random.default_rng(2013)
    for _ in range(12):
        theta = rng.uniform(-3.0, 4.0, size=3)
        err = check_grad(
            lambda th: gammagamma.loglik_and_grad(th, stats)[0] / n,
            lambda th: gammagamma.loglik_and_grad(th, stats)[1] / n,
            theta,
            epsilon=1e-7,
        )
        scale = max(1.0, float(np.linalg.norm(gammagamma.loglik_and_grad(theta, stats)[1] / n)))
        assert err / scale < 2e-5, (np.exp(theta), err)


def test_extreme_parameters_stay_finite(cdnow_summary: CalibrationSummary) -> None:
    stats = gammagamma.SpendStats.from_arrays(cdnow_summary.x, cdnow_summary.mean_spend)
    for theta in ([-20.0, -20.0, -20.0], [20.0, 20.0, 20.0], [20.0, -20.0, 5.0], [-20.0, 20.0, -5.0]):
        value, grad = gammagamma.loglik_and_grad(np.array(theta), stats)
        assert np.isfinite(value)
        assert np.all(np.isfinite(grad))


def test_needs_repeat_customers_with_positive_spend() -> None:
    with pytest.raises(CLVInputError):
        fit_gamma_gamma([0, 0], [np.nan, np.nan])
    with pytest.raises(CLVInputError):
        fit_gamma_gamma([1, 2], [10.0, 0.0])
