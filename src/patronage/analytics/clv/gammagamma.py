"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie
2013, "The Gamma-Gamma Model of Monetary Value").

Story: a customer's transaction values are Gamma(p, nu) with ``nu ~ Gamma(q, gamma)`` across
customers, so the customer's mean spend is ``p / nu``. For a customer with ``x >= 1`` transactions of
average value ``m``, the likelihood of ``m`` is

    f(m | p, q, gamma; x) = Gamma(px+q) / (Gamma(px) Gamma(q)) gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)

Fit it on customers with at least one *repeat* purchase, using the mean value of their repeat purchases
(the first purchase is usually atypical). The model assumes spend is independent of purchase frequency --
check ``corr(x, m)`` before trusting it. Money is in the currency unit of ``m``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from patronage.analytics.clv.data import FloatArray, as_float_array, wdot, weighted_bincount
from patronage.analytics.clv.errors import CLVInputError
from patronage.analytics.clv.fitting import maximize


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters (``gamma`` is in the currency unit of the spends)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    n_customers: float

    @property
    def population_mean_spend(self) -> float:
        """E[mean spend] across customers = p gamma / (q - 1) (infinite when q <= 1)."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else float("inf")

    def conditional_expected_spend(self, x: npt.ArrayLike, mean_spend: npt.ArrayLike) -> FloatArray:
        return conditional_expected_spend(self, x, mean_spend)


@dataclass(frozen=True)
class SpendStats:
    """Compressed (x, mean spend) rows with weights; only customers with ``x >= 1``."""

    x: FloatArray
    mean_spend: FloatArray
    weight: FloatArray

    @classmethod
    def from_arrays(
        cls, x: npt.ArrayLike, mean_spend: npt.ArrayLike, weight: npt.ArrayLike | None = None
    ) -> SpendStats:
        """Keep customers with ``x >= 1`` (others carry no spend information) and compress duplicates."""
        xa = np.asarray(x, dtype=np.float64).ravel()
        ma = np.asarray(mean_spend, dtype=np.float64).ravel()
        wa = np.ones_like(xa) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
        if not (xa.shape == ma.shape == wa.shape):
            raise CLVInputError("x, mean_spend and weight must have the same length", field="mean_spend")
        keep = xa >= 1
        xa, ma, wa = xa[keep], as_float_array(ma[keep], "mean_spend"), wa[keep]
        if xa.size == 0:
            raise CLVInputError("no customer with a repeat purchase to fit spend on", field="x")
        if np.any(ma <= 0):
            raise CLVInputError("mean spend must be positive", field="mean_spend")
        rows, inverse = np.unique(np.column_stack([xa, ma]), axis=0, return_inverse=True)
        summed = weighted_bincount(inverse.ravel(), wa, rows.shape[0])
        return cls(rows[:, 0].copy(), rows[:, 1].copy(), summed)


def loglik_and_grad(log_params: npt.ArrayLike, stats: SpendStats) -> tuple[float, FloatArray]:
    """Total log-likelihood at ``exp(log_params) = (p, q, gamma)`` and its gradient in log-parameters."""
    p, q, gamma = np.exp(np.asarray(log_params, dtype=np.float64))
    x, m, w = stats.x, stats.mean_spend, stats.weight
    px = p * x
    log_den = np.log(gamma + m * x)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_den
    )
    psi_sum = special.digamma(px + q)
    d_p = x * (psi_sum - special.digamma(px) + np.log(m) + np.log(x) - log_den)
    d_q = psi_sum - special.digamma(q) + np.log(gamma) - log_den
    d_gamma = q / gamma - (px + q) / (gamma + m * x)
    grad = np.array([wdot(w, d_p) * p, wdot(w, d_q) * q, wdot(w, d_gamma) * gamma])
    return wdot(w, ll), grad


def fit_gamma_gamma(
    x: npt.ArrayLike,
    mean_spend: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    start: tuple[float, float, float] | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit; customers with ``x == 0`` are ignored."""
    stats = SpendStats.from_arrays(x, mean_spend, weight)
    n = float(stats.weight.sum())
    if start is None:
        start = (1.0, 2.0, float(np.average(stats.mean_spend, weights=stats.weight)))
    result = maximize(lambda theta: loglik_and_grad(theta, stats), np.array(start), n_customers=n)
    p, q, gamma = (float(v) for v in result.params)
    return GammaGammaParams(p, q, gamma, result.log_likelihood, n)


def conditional_expected_spend(params: GammaGammaParams, x: npt.ArrayLike, mean_spend: npt.ArrayLike) -> FloatArray:
    """E[spend per transaction | x, m] = (gamma + m x) p / (p x + q - 1).

    A weighted average of the population mean ``p gamma / (q - 1)`` (weight ``(q-1)/(px+q-1)``) and the
    customer's own mean ``m`` (weight ``px/(px+q-1)``): the more transactions, the more we trust ``m``.
    For ``x == 0`` (``m`` ignored) it is the population mean. Requires ``q > 1``.
    """
    xa = np.asarray(x, dtype=np.float64)
    ma = np.where(xa > 0, np.asarray(mean_spend, dtype=np.float64), 0.0)
    return (params.gamma + ma * xa) * params.p / (params.p * xa + params.q - 1.0)
