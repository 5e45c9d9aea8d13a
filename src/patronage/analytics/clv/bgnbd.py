"""BG/NBD: the beta-geometric / negative-binomial model (Fader, Hardie & Lee 2005, "Counting your
customers the easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2)).

Story: while alive, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)`` (``alpha`` is
a *rate*, in the data's time unit); after every repeat purchase they become inactive with probability
``p ~ Beta(a, b)``. Inputs are (x, t_x, T) in one :class:`~patronage.analytics.clv.data.TimeUnit`
(weeks in the paper); every horizon ``t`` passed to a prediction is in the same unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from patronage.analytics.clv import _betageo
from patronage.analytics.clv.data import FloatArray, RFMStats, TimeUnit
from patronage.analytics.clv.fitting import maximize, mean_rate_start

_K = 0  # BG/NBD: no drop-out at the first purchase


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters; ``alpha`` is per ``time_unit``."""

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


def _theta(params: BGNBDParams) -> _betageo.Params:
    return (params.r, params.alpha, params.a, params.b)


def loglik_and_grad(log_params: npt.ArrayLike, stats: RFMStats) -> tuple[float, FloatArray]:
    """Total log-likelihood at ``exp(log_params) = (r, alpha, a, b)`` and its gradient in log-parameters."""
    return _betageo.loglik(np.asarray(log_params, dtype=np.float64), stats, _K)


def fit_bgnbd(stats: RFMStats, *, start: tuple[float, float, float, float] | None = None) -> BGNBDParams:
    """Maximum-likelihood BG/NBD fit on compressed statistics (t_x and T in ``stats.time_unit``)."""
    if start is None:
        start = (1.0, mean_rate_start(stats.x, stats.T, stats.weight), 1.0, 1.0)
    result = maximize(lambda theta: loglik_and_grad(theta, stats), np.array(start), n_customers=stats.n_customers)
    r, alpha, a, b = (float(v) for v in result.params)
    return BGNBDParams(r, alpha, a, b, result.log_likelihood, stats.n_customers, stats.time_unit)


def p_alive(params: BGNBDParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:  # noqa: N803
    """P(customer still alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))."""
    xa, txa, ta = _betageo.as_floats(x, t_x, T)
    return _betageo.p_alive(_theta(params), _K, xa, txa, ta)


def expected_purchases(
    params: BGNBDParams,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
) -> FloatArray:
    """Expected purchases in the next ``t`` time units for a customer with history (x, t_x, T)."""
    ta_, xa, txa, ta = _betageo.as_floats(t, x, t_x, T)
    return _betageo.expected_purchases(_theta(params), ta_, xa, txa, ta, k=_K)


def expected_purchases_in(params: BGNBDParams, t: npt.ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat purchases in the first ``t`` time units after a customer's first purchase.

    ``(a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]`` (FHL 2005, eq. 9).
    """
    (ta,) = _betageo.as_floats(t)
    return _betageo.expected_purchases_in(_theta(params), _K, ta)
