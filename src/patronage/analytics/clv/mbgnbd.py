"""MBG/NBD: the modified BG/NBD (Batislam, Denizel & Filiztekin 2007, "Empirical validation and comparison
of models for customer base analysis", IJRM 24(3); the same model is Hoppe & Wagner's 2007 "central
variant" CBG/NBD).

Identical to BG/NBD except that a customer may also become inactive right after the *first* purchase, so
customers with no repeat purchase are no longer certainly alive. Likelihood (``G = Gamma(r+x) alpha^r /
Gamma(r)``):

    L = B(a, b+x+1)/B(a, b) G/(alpha+T)^(r+x) + B(a+1, b+x)/B(a, b) G/(alpha+t_x)^(r+x)

t_x and T are in the time unit of the statistics (weeks in the literature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from patronage.analytics.clv import _betageo
from patronage.analytics.clv.data import FloatArray, RFMStats, TimeUnit
from patronage.analytics.clv.fitting import maximize, mean_rate_start

_K = 1  # MBG/NBD: drop-out possible at the first purchase too


@dataclass(frozen=True)
class MBGNBDParams:
    """Fitted MBG/NBD parameters; ``alpha`` is per ``time_unit``."""

    r: float
    alpha: float
    a: float
    b: float
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


def _theta(params: MBGNBDParams) -> _betageo.Params:
    return (params.r, params.alpha, params.a, params.b)


def loglik_and_grad(log_params: npt.ArrayLike, stats: RFMStats) -> tuple[float, FloatArray]:
    """Total log-likelihood at ``exp(log_params) = (r, alpha, a, b)`` and its gradient in log-parameters."""
    return _betageo.loglik(np.asarray(log_params, dtype=np.float64), stats, _K)


def fit_mbgnbd(stats: RFMStats, *, start: tuple[float, float, float, float] | None = None) -> MBGNBDParams:
    """Maximum-likelihood MBG/NBD fit on compressed statistics (t_x and T in ``stats.time_unit``)."""
    if start is None:
        start = (1.0, mean_rate_start(stats.x, stats.T, stats.weight), 1.0, 1.0)
    result = maximize(lambda theta: loglik_and_grad(theta, stats), np.array(start), n_customers=stats.n_customers)
    r, alpha, a, b = (float(v) for v in result.params)
    return MBGNBDParams(r, alpha, a, b, result.log_likelihood, stats.n_customers, stats.time_unit)


def p_alive(
    params: MBGNBDParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)); below 1 even at x = 0."""
    xa, txa, ta = _betageo.as_floats(x, t_x, T)
    return _betageo.p_alive(_theta(params), _K, xa, txa, ta)


def expected_purchases(
    params: MBGNBDParams,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    """Expected purchases in the next ``t`` time units for a customer with history (x, t_x, T).

    ``(a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))] P(alive)``.
    """
    ta_, xa, txa, ta = _betageo.as_floats(t, x, t_x, T)
    return _betageo.expected_purchases(_theta(params), ta_, xa, txa, ta, k=_K)


def expected_purchases_in(params: MBGNBDParams, t: npt.ArrayLike) -> FloatArray:
    """E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))] for a new customer."""
    (ta,) = _betageo.as_floats(t)
    return _betageo.expected_purchases_in(_theta(params), _K, ta)
