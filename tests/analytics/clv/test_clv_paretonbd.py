"""Pareto/NBD on CDNOW, and the hypergeometric series behind it.

Published: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Table 1 (Pareto/NBD column):
r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669, LL = -9595.0; and Fader, Hardie & Lee (2005),
"A note on implementing the Pareto/NBD model in MATLAB": LL = -9594.98. (The BTYD R package, which follows
the note, prints 0.553, 10.580, 0.606, 11.656 and LL -9594.976: the likelihood is very flat along beta, and
its point is 2.5e-5 log-likelihood units below the maximum we find, so its beta differs from ours by 1.1e-3
relative. We assert the paper's table, which is the maximum to the digits printed.)
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from scipy.optimize import check_grad

from patronage.analytics.clv import ParetoNBDParams, RFMStats, TimeUnit, paretonbd
from patronage.analytics.clv.special import log_hyp2f1_1bc


def test_parameters_match_the_paper(cdnow_paretonbd: ParetoNBDParams) -> None:
    p = cdnow_paretonbd
    assert p.r == pytest.approx(0.553, abs=5e-4)
    assert p.alpha == pytest.approx(10.578, abs=5e-4)
    assert p.s == pytest.approx(0.606, abs=5e-4)
    assert p.beta == pytest.approx(11.669, abs=5e-4)
    assert p.log_likelihood == pytest.approx(-9594.98, abs=0.005)


def test_likelihood_at_the_btyd_estimates(cdnow_stats: RFMStats) -> None:
    ll, _ = paretonbd.loglik_and_grad(np.log([0.553, 10.580, 0.606, 11.656]), cdnow_stats)
    assert ll == pytest.approx(-9594.98, abs=0.005)


def test_series_matches_scipy_and_its_derivatives_match_finite_differences() -> None:
    rng = np.random.default_rng(9)
    b = rng.uniform(0.05, 30.0, 200)
    c = b + rng.uniform(0.05, 5.0, 200)
    z = rng.uniform(0.0, 0.97, 200)
    got = log_hyp2f1_1bc(b, c, z)
    np.testing.assert_allclose(got.value, np.log(special.hyp2f1(1.0, b, c, z)), rtol=1e-12, atol=1e-14)
    h = 1e-6

    def ref(bb: np.ndarray, cc: np.ndarray, zz: np.ndarray) -> np.ndarray:
        return np.asarray(np.log(special.hyp2f1(1.0, bb, cc, zz)), dtype=np.float64)

    np.testing.assert_allclose(got.d_b, (ref(b + h, c, z) - ref(b - h, c, z)) / (2 * h), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.d_c, (ref(b, c + h, z) - ref(b, c - h, z)) / (2 * h), rtol=1e-5, atol=1e-7)
    zp, zm = np.minimum(z + h, 0.99), np.maximum(z - h, 0.0)
    np.testing.assert_allclose(got.d_z, (ref(b, c, zp) - ref(b, c, zm)) / (zp - zm), rtol=1e-5, atol=1e-7)


def test_both_branches_agree_where_they_meet(cdnow_stats: RFMStats) -> None:
    # alpha >= beta and beta > alpha use different series; the likelihood must be smooth across alpha == beta.
    eps = 1e-9
    below = paretonbd.loglik_and_grad(np.log([0.6, 10.0, 0.7, 10.0 * (1 + eps)]), cdnow_stats)
    above = paretonbd.loglik_and_grad(np.log([0.6, 10.0, 0.7, 10.0 * (1 - eps)]), cdnow_stats)
    assert below[0] == pytest.approx(above[0], abs=1e-5)
    np.testing.assert_allclose(below[1], above[1], rtol=1e-5, atol=1e-4)


def test_gradient_matches_finite_differences(cdnow_stats: RFMStats) -> None:
    rng = np.random.default_rng(1987)
    n = cdnow_stats.n_customers
    for _ in range(6):
        theta = rng.uniform(-2.5, 2.5, size=4)
        err = check_grad(
            lambda th: paretonbd.loglik_and_grad(th, cdnow_stats)[0] / n,
            lambda th: paretonbd.loglik_and_grad(th, cdnow_stats)[1] / n,
            theta,
            epsilon=1e-7,
        )
        scale = max(1.0, float(np.linalg.norm(paretonbd.loglik_and_grad(theta, cdnow_stats)[1] / n)))
        assert err / scale < 2e-5, (np.exp(theta), err)


@pytest.mark.parametrize("corner", range(16))
def test_likelihood_is_finite_at_extreme_parameters(cdnow_stats: RFMStats, corner: int) -> None:
    # e^+-6: rates from 2.5e-3 to 400 per week (alpha/beta ratios up to 1.6e5), shapes likewise -- far
    # outside anything a fit visits, and deep in the slowly converging z -> 1 corner of the series.
    signs = np.array([1 if corner >> i & 1 else -1 for i in range(4)], dtype=float)
    value, grad = paretonbd.loglik_and_grad(signs * 6.0, cdnow_stats)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))


def test_predictions(cdnow_paretonbd: ParetoNBDParams) -> None:
    p = cdnow_paretonbd
    alive = p.p_alive([0, 2, 2], [0.0, 30.43, 5.0], 38.86)
    assert 0 < alive[2] < alive[1] < 1
    assert 0 < alive[0] < 1
    # s = 1 is a removable singularity of E[X(t)]: continuous through it.
    around = [
        float(ParetoNBDParams(0.5, 10.0, s, 12.0, 0.0, 1.0, TimeUnit.WEEKS).expected_purchases_in(39.0))
        for s in (1 - 1e-7, 1.0, 1 + 1e-7)
    ]
    assert around[0] == pytest.approx(around[1], rel=1e-6)
    assert around[2] == pytest.approx(around[1], rel=1e-6)
    assert np.all(np.isfinite(p.expected_purchases(520.0, [0, 100, 1000], [0.0, 38.86, 38.86], 38.86)))
