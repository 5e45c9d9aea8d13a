"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987), implemented after Fader, Hardie & Lee (2005),
"A note on implementing the Pareto/NBD model in MATLAB".

Story: while alive, purchases are Poisson with rate ``lambda ~ Gamma(r, alpha)``; the unobserved lifetime
is exponential with rate ``mu ~ Gamma(s, beta)``. ``alpha`` and ``beta`` are rates per time unit of the
data (weeks in the note). The likelihood of (x, t_x, T) is

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s * I ],
    I = integral_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau = J(t_x) - J(T)

(``s * I`` is the note's ``s/(r+s+x) A_0``). With ``p = r+s+x`` and, when alpha >= beta,
``z = (alpha-beta)/(alpha+t)``, the tail integral is

    J(t) = (alpha+t)^-(r+s+x) 2F1(r+s+x, s+1; r+s+x+1; z) / p          (the note's A_0 term)
         = (alpha+t)^-(r+x) (beta+t)^-s 2F1(1, r+x; p+1; z) / p           (Euler's transformation)

and symmetrically with the roles of (alpha, r+x) and (beta, s+1) swapped when beta > alpha (the note's
max(alpha, beta) branch), so that always ``0 <= z < 1``. The transformed series has positive terms only;
we sum it in :func:`~patronage.analytics.clv.special.log_hyp2f1_1bc` together with its exact derivatives,
and combine everything in log space: ``log I = log J(t_x) + log(1 - J(T)/J(t_x))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from patronage.analytics.clv.data import FloatArray, RFMStats, TimeUnit, wdot
from patronage.analytics.clv.fitting import maximize, mean_rate_start
from patronage.analytics.clv.special import log1mexp, log_hyp2f1_1bc, one_minus_exp_over


@dataclass(frozen=True)
class ParetoNBDParams:
    """Fitted Pareto/NBD parameters; ``alpha`` and ``beta`` are per ``time_unit``."""

    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float
    n_customers: float
    time_unit: TimeUnit

    def p_alive(self, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:  # noqa: N803
        return p_alive(self, x, t_x, T)

    def expected_purchases(
        self,
        t: npt.ArrayLike,
        x: npt.ArrayLike,
        t_x: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        return expected_purchases(self, t, x, t_x, T)

    def expected_purchases_in(self, t: npt.ArrayLike) -> FloatArray:
        return expected_purchases_in(self, t)


_Params = tuple[float, float, float, float]  # (r, alpha, s, beta)


def _log_tail(params: _Params, x: FloatArray, t: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``log J(t)`` and its gradient w.r.t. (r, alpha, s, beta), shape (4, n)."""
    r, alpha, s, beta = params
    p = r + s + x
    if alpha >= beta:
        big, small, e_big, e_small_m1 = alpha, beta, r + x, np.full_like(x, s)
    else:
        big, small, e_big, e_small_m1 = beta, alpha, np.full_like(x, s + 1.0), r + x - 1.0
    log_big, log_small = np.log(big + t), np.log(small + t)
    z = (big - small) / (big + t)
    f = log_hyp2f1_1bc(e_big, p + 1.0, z)
    value = -np.log(p) - e_big * log_big - e_small_m1 * log_small + f.value
    dz_dbig = (small + t) / (big + t) ** 2
    dz_dsmall = -1.0 / (big + t)
    d_big = -e_big / (big + t) + f.d_z * dz_dbig
    d_small = -e_small_m1 / (small + t) + f.d_z * dz_dsmall
    common = -1.0 / p + f.d_c  # p and c = p + 1 move one-for-one with r and with s
    if alpha >= beta:  # big = alpha (exponent r + x), small = beta (exponent s + 1)
        d_r = common - np.log(alpha + t) + f.d_b
        d_s = common - np.log(beta + t)
        d_alpha, d_beta = d_big, d_small
    else:  # big = beta (exponent s + 1), small = alpha (exponent r + x)
        d_r = common - np.log(alpha + t)
        d_s = common - np.log(beta + t) + f.d_b
        d_alpha, d_beta = d_small, d_big
    return value, np.stack([d_r, d_alpha, d_s, d_beta])


def _row_terms(
    params: _Params,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,  # noqa: N803
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per row: ``L1 = log`` of the alive term (without the constant), ``log(s I)``, and their gradients."""
    r, alpha, s, beta = params
    first = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    d_first = np.stack([-np.log(alpha + T), -(r + x) / (alpha + T), -np.log(beta + T), -s / (beta + T)])
    log_jx, d_jx = _log_tail(params, x, t_x)
    log_jt, d_jt = _log_tail(params, x, T)
    gap = np.minimum(log_jt - log_jx, 0.0)  # log(J(T)/J(t_x)) <= 0
    # I = 0 when the customer bought at the very end of calibration (t_x = T); I is also lost to rounding
    # when J(T) / J(t_x) rounds to 1, which only happens at absurd parameter values. Either way the
    # "died between t_x and T" branch drops out.
    degenerate = (t_x >= T) | (gap == 0.0)
    with np.errstate(divide="ignore"):
        second = np.where(degenerate, -np.inf, np.log(s) + log_jx + log1mexp(np.where(degenerate, -1.0, gap)))
    q = np.exp(gap)
    safe = np.where(degenerate, 0.5, 1.0 - q)
    d_second = np.where(degenerate, 0.0, (d_jx - q * d_jt) / safe)
    d_second[2] += 1.0 / s
    return first, second, d_first, d_second


def loglik_and_grad(log_params: npt.ArrayLike, stats: RFMStats) -> tuple[float, FloatArray]:
    """Total log-likelihood at ``exp(log_params) = (r, alpha, s, beta)`` and its log-parameter gradient."""
    r, alpha, s, beta = np.exp(np.asarray(log_params, dtype=np.float64))
    x, t_x, T, w = stats.x, stats.t_x, stats.T, stats.weight  # noqa: N806
    xv, wx = stats.x_levels.values, stats.x_levels.weight
    total_w = float(w.sum())
    constant = wdot(wx, special.gammaln(r + xv) - special.gammaln(r))
    constant += total_w * (r * np.log(alpha) + s * np.log(beta))
    first, second, d_first, d_second = _row_terms((r, alpha, s, beta), x, t_x, T)
    both = np.logaddexp(first, second)
    w2 = np.exp(second - both)
    value = constant + wdot(w, both)
    grad = np.einsum("ki,i->k", d_first * (1.0 - w2) + d_second * w2, w)
    grad[0] += wdot(wx, special.digamma(r + xv) - special.digamma(r)) + total_w * np.log(alpha)
    grad[1] += total_w * r / alpha
    grad[2] += total_w * np.log(beta)
    grad[3] += total_w * s / beta
    return value, grad * np.array([r, alpha, s, beta])


def fit_paretonbd(stats: RFMStats, *, start: tuple[float, float, float, float] | None = None) -> ParetoNBDParams:
    """Maximum-likelihood Pareto/NBD fit on compressed statistics (t_x and T in ``stats.time_unit``)."""
    if start is None:
        scale = mean_rate_start(stats.x, stats.T, stats.weight)
        start = (1.0, scale, 1.0, float(np.average(stats.T, weights=stats.weight)))
    result = maximize(lambda theta: loglik_and_grad(theta, stats), np.array(start), n_customers=stats.n_customers)
    r, alpha, s, beta = (float(v) for v in result.params)
    return ParetoNBDParams(r, alpha, s, beta, result.log_likelihood, stats.n_customers, stats.time_unit)


def p_alive(
    params: ParetoNBDParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    """P(alive at T | x, t_x, T): the alive term's share of the likelihood, ``1/(1 + exp(log(sI) - L1))``."""
    xa, txa, ta = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, t_x, T)))
    shape = xa.shape
    theta = (params.r, params.alpha, params.s, params.beta)
    first, second, _, _ = _row_terms(theta, xa.ravel(), txa.ravel(), ta.ravel())
    return np.asarray(special.expit(first - second), dtype=np.float64).reshape(shape)


def expected_purchases(
    params: ParetoNBDParams,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    """E[Y(t) | x, t_x, T] = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive).

    Written as ``(r+x)/(alpha+T) (beta+T) (1 - exp(-(s-1) g)) / (s-1)`` with ``g = log(1 + t/(beta+T))``,
    which is continuous at ``s = 1``. ``t`` is in the model's time unit.
    """
    ta_, xa, txa, ta = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (t, x, t_x, T)))
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    g = np.log1p(ta_ / (beta + ta))
    conditional_rate = (r + xa) / (alpha + ta) * (beta + ta) * one_minus_exp_over(s - 1.0, g)
    return conditional_rate * p_alive(params, xa, txa, ta)


def expected_purchases_in(params: ParetoNBDParams, t: npt.ArrayLike) -> FloatArray:
    """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] for a new customer (t in model units)."""
    ta = np.asarray(t, dtype=np.float64)
    g = np.log1p(ta / params.beta)
    return params.r * params.beta / params.alpha * one_minus_exp_over(params.s - 1.0, g)
