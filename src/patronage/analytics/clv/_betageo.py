"""Likelihood and predictions shared by BG/NBD and MBG/NBD (they differ by one shift ``k``).

Both models: while alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
after a purchase they "die" with probability ``p ~ Beta(a, b)``. BG/NBD (``k = 0``) lets customers die
after *repeat* purchases only; MBG/NBD (``k = 1``) also right after the first purchase. The likelihood of
(x, t_x, T) is

    L = B(a, b + x + k) / B(a, b) * G / (alpha + T)^(r + x)
        + [x > 0 or k = 1] * B(a + 1, b + x + k - 1) / B(a, b) * G / (alpha + t_x)^(r + x)

with ``G = Gamma(r + x) alpha^r / Gamma(r)``. We evaluate ``log L = C + L1 + softplus(D)`` where
``D = log(second / first) = log a - log(b + x + k - 1) - (r + x) log((alpha + t_x) / (alpha + T))``,
so no term is ever exponentiated on its own.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

from patronage.analytics.clv.data import FloatArray, RFMStats, wdot
from patronage.analytics.clv.special import hyp2f1


def loglik(log_params: FloatArray, stats: RFMStats, k: int) -> tuple[float, FloatArray]:
    """Total weighted log-likelihood and its exact gradient w.r.t. ``log(r, alpha, a, b)``.

    Terms that depend on x only, or on T only, are evaluated per distinct value (``stats.*_levels``);
    only ``D`` and its softplus/sigmoid are computed per row.
    """
    r, alpha, a, b = np.exp(np.asarray(log_params, dtype=np.float64))
    xl, tl, txl = stats.x_levels, stats.T_levels, stats.t_x_levels
    xv, wx = xl.values, xl.weight
    total_w = float(wx.sum())

    # Per distinct x.
    per_x = special.gammaln(r + xv) - special.gammaln(r) + special.betaln(a, b + xv + k) - special.betaln(a, b)
    dr_x = special.digamma(r + xv) - special.digamma(r)
    da_x = special.digamma(a + b) - special.digamma(a + b + xv + k)
    db_x = special.digamma(b + xv + k) - special.digamma(b) + da_x
    has_second = (xv > 0) if k == 0 else np.ones(xv.shape, dtype=bool)
    denom = np.where(has_second, b + xv + k - 1.0, 1.0)
    log_ratio_x = np.where(has_second, np.log(a) - np.log(denom), -np.inf)  # D's x-only part
    inv_denom = np.where(has_second, 1.0 / denom, 0.0)

    # Per distinct T and t_x: the alive branch's -(r + x) log(alpha + T), aggregated by T level.
    log_at, inv_at = np.log(alpha + tl.values), 1.0 / (alpha + tl.values)
    log_atx, inv_atx = np.log(alpha + txl.values), 1.0 / (alpha + txl.values)
    rx_by_t = r * tl.weight + stats.x_sum_by_T
    value = wdot(wx, per_x) + total_w * r * np.log(alpha) - wdot(rx_by_t, log_at)
    grad_r = wdot(wx, dr_x) + total_w * np.log(alpha) - wdot(tl.weight, log_at)
    grad_alpha = total_w * r / alpha - wdot(rx_by_t, inv_at)
    grad_a = wdot(wx, da_x)
    grad_b = wdot(wx, db_x)

    # Per row: D = log(second / first) and the softplus that adds the "died at t_x" branch.
    delta = log_atx[txl.index] - log_at[tl.index]
    rx = (r + xv)[xl.index]
    d = log_ratio_x[xl.index] - rx * delta
    w = stats.weight
    ws = w * special.expit(d)  # weight times the posterior probability of the "died at t_x" branch
    value += wdot(w, np.logaddexp(0.0, d))
    grad_r -= wdot(ws, delta)
    grad_alpha -= wdot(ws * rx, inv_atx[txl.index] - inv_at[tl.index])
    grad_a += float(ws.sum()) / a
    grad_b -= wdot(ws, inv_denom[xl.index])
    grad = np.array([grad_r * r, grad_alpha * alpha, grad_a * a, grad_b * b])
    return value, grad


Params = tuple[float, float, float, float]  # (r, alpha, a, b)


def p_alive(params: Params, k: int, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:  # noqa: N803
    """P(alive at T | x, t_x, T) = 1 / (1 + exp(D)) (BG/NBD: 1 when x == 0)."""
    r, alpha, a, b = params
    x, t_x, T = np.broadcast_arrays(x, t_x, T)  # noqa: N806
    has_second = (x > 0) if k == 0 else np.ones(x.shape, dtype=bool)
    denom = np.where(has_second, b + x + k - 1.0, 1.0)
    d = np.log(a) - np.log(denom) - (r + x) * (np.log(alpha + t_x) - np.log(alpha + T))
    return np.where(has_second, special.expit(-d), 1.0)


def expected_purchases(
    params: Params,
    t: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,  # noqa: N803
    *,
    k: int,
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] for a customer with history (x, t_x, T).

    Given alive, the posterior is ``lambda ~ Gamma(r + x, alpha + T)``, ``p ~ Beta(a, b + x + k)`` and
    ``E[Y(t) | lambda, p] = (1 - exp(-lambda p t)) / p``; integrating gives

        (a + b + x + k - 1) / (a - 1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+k; a+b+x+k-1; z)]

    times P(alive), with ``z = t / (alpha + T + t)``. Euler's transformation rewrites the bracket as
    ``1 - (1 - z)^(a-1) 2F1(a + b + k - 1 - r, a - 1; a + b + x + k - 1; z)``, which stays bounded for large
    x (the original form overflows). The removable singularity at ``a = 1`` is bridged by symmetric averaging.
    """
    r, alpha, a, b = params
    if abs(a - 1.0) < 1e-6:
        lo = expected_purchases((r, alpha, 1.0 - 1e-6, b), t, x, t_x, T, k=k)
        hi = expected_purchases((r, alpha, 1.0 + 1e-6, b), t, x, t_x, T, k=k)
        return 0.5 * (lo + hi)
    t, x, t_x, T = np.broadcast_arrays(t, x, t_x, T)  # noqa: N806
    z = t / (alpha + T + t)
    log_one_minus_z = np.log(alpha + T) - np.log(alpha + T + t)
    c = a + b + x + k - 1.0
    bracket = 1.0 - np.exp((a - 1.0) * log_one_minus_z) * hyp2f1(a + b + k - 1.0 - r, a - 1.0, c, z)
    return c / (a - 1.0) * bracket * p_alive(params, k, x, t_x, T)


def expected_purchases_in(params: Params, k: int, t: FloatArray) -> FloatArray:
    """E[X(t)]: expected repeat purchases in (0, t] for a customer just acquired (x = t_x = T = 0)."""
    zero = np.zeros_like(t)
    return expected_purchases(params, t, zero, zero, zero, k=k)


def as_floats(*values: npt.ArrayLike) -> list[FloatArray]:
    """Convert prediction inputs to float64 arrays (broadcasting is done by the callers)."""
    return [np.asarray(v, dtype=np.float64) for v in values]
