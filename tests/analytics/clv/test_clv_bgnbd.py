"""BG/NBD against Fader, Hardie & Lee (2005), "Counting your customers the easy way", on CDNOW.

Published (section 5 and the worked example of their appendix / note 004): r = 0.243, alpha = 4.414,
a = 0.793, b = 2.426, LL = -9582.4; the customer with x = 2, t_x = 30.43, T = 38.86 (weeks) is expected
to make 1.226 purchases in the next 39 weeks.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from patronage.analytics.clv import BGNBDParams, CalibrationSummary, RFMStats, TimeUnit, bgnbd, fit_bgnbd
from patronage.analytics.clv.fitting import LOG_BOUND


def test_parameters_match_the_paper(cdnow_bgnbd: BGNBDParams) -> None:
    p = cdnow_bgnbd
    assert p.r == pytest.approx(0.243, abs=5e-4)
    assert p.alpha == pytest.approx(4.414, abs=5e-4)
    assert p.a == pytest.approx(0.793, abs=5e-4)
    assert p.b == pytest.approx(2.426, abs=5e-4)
    assert p.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert p.n_customers == 2_357
    assert p.time_unit is TimeUnit.WEEKS


def test_worked_example_prediction(cdnow_bgnbd: BGNBDParams) -> None:
    expected = cdnow_bgnbd.expected_purchases(39, 2, 30.43, 38.86)
    assert float(expected) == pytest.approx(1.226, abs=5e-4)


def test_p_alive_behaves(cdnow_bgnbd: BGNBDParams) -> None:
    p = cdnow_bgnbd
    assert float(p.p_alive(0, 0, 38.86)) == 1.0  # BG/NBD: no repeat purchase, no chance to have died
    recent = float(p.p_alive(5, 38.0, 38.86))
    stale = float(p.p_alive(5, 5.0, 38.86))
    assert 0 < stale < recent < 1


def test_unconditional_expectation_is_the_conditional_one_of_a_newborn(cdnow_bgnbd: BGNBDParams) -> None:
    t = np.array([0.0, 1.0, 39.0, 78.0])
    got = cdnow_bgnbd.expected_purchases_in(t)
    assert got[0] == 0.0
    assert np.all(np.diff(got) > 0)
    # FHL 2005 eq. (9) written without Euler's transformation.
    from scipy.special import hyp2f1

    r, alpha, a, b = cdnow_bgnbd.r, cdnow_bgnbd.alpha, cdnow_bgnbd.a, cdnow_bgnbd.b
    direct = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    np.testing.assert_allclose(got, direct, rtol=1e-12, atol=1e-14)


def test_predictions_are_vectorised_and_broadcast(cdnow_bgnbd: BGNBDParams) -> None:
    x = np.array([0, 1, 2, 10])
    t_x = np.array([0.0, 5.0, 30.43, 38.0])
    out = cdnow_bgnbd.expected_purchases(39, x, t_x, 38.86)
    assert out.shape == (4,)
    assert float(out[2]) == pytest.approx(1.226, abs=5e-4)
    grid = cdnow_bgnbd.expected_purchases(np.array([[13.0], [39.0]]), x, t_x, 38.86)
    assert grid.shape == (2, 4)
    assert np.all(grid[1] > grid[0])


def test_compressed_and_raw_likelihoods_agree(cdnow_summary: CalibrationSummary, cdnow_stats: RFMStats) -> None:
    s = cdnow_summary
    raw = RFMStats.from_arrays(s.x, s.t_x, s.T, time_unit=TimeUnit.WEEKS, compress=False)
    theta = np.log([0.3, 5.0, 0.7, 2.0])
    v1, g1 = bgnbd.loglik_and_grad(theta, raw)
    v2, g2 = bgnbd.loglik_and_grad(theta, cdnow_stats)
    assert raw.n_rows == 2_357 > cdnow_stats.n_rows
    assert v1 == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-10)


def test_gradient_matches_finite_differences(cdnow_stats: RFMStats) -> None:
    rng = np.random.default_rng(20050101)
    n = cdnow_stats.n_customers
    for _ in range(12):
        theta = rng.uniform(-3.0, 3.0, size=4)
        err = check_grad(
            lambda th: bgnbd.loglik_and_grad(th, cdnow_stats)[0] / n,
            lambda th: bgnbd.loglik_and_grad(th, cdnow_stats)[1] / n,
            theta,
            epsilon=1e-7,
        )
        scale = max(1.0, float(np.linalg.norm(bgnbd.loglik_and_grad(theta, cdnow_stats)[1] / n)))
        assert err / scale < 2e-5, (np.exp(theta), err)


@pytest.mark.parametrize("corner", range(16))
def test_likelihood_is_finite_at_extreme_parameters(cdnow_stats: RFMStats, corner: int) -> None:
    signs = np.array([1 if corner >> i & 1 else -1 for i in range(4)], dtype=float)
    value, grad = bgnbd.loglik_and_grad(signs * LOG_BOUND, cdnow_stats)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))


def test_predictions_are_finite_for_heavy_buyers(cdnow_bgnbd: BGNBDParams) -> None:
    # Bought on the last day: the heavier the buyer, the more they will buy (the overflow-prone regime of
    # the textbook formula, whose 2F1 grows like (1 - z)^-(r + x)).
    out = cdnow_bgnbd.expected_purchases(520, [0, 50, 500, 5000], [0, 38.86, 38.86, 38.86], 38.86)
    assert np.all(np.isfinite(out))
    assert np.all(np.diff(out) > 0)
    # ...while a heavy buyer silent for a week is almost surely gone.
    assert float(cdnow_bgnbd.p_alive(5000, 37.86, 38.86)) < 1e-30


def test_fit_recovers_the_parameters_of_a_simulation() -> None:
    from patronage.analytics.clv.simulate import simulate_bgnbd

    x, t_x, age = simulate_bgnbd(60_000, r=0.8, alpha=6.0, a=0.6, b=3.0, seed=7, round_to_days=False)
    fitted = fit_bgnbd(RFMStats.from_arrays(x, t_x, age, time_unit=TimeUnit.WEEKS))
    got = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    np.testing.assert_allclose(got, [0.8, 6.0, 0.6, 3.0], rtol=0.1)
