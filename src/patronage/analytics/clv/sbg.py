"""Shifted-beta-geometric (sBG) model of contract renewals (Fader & Hardie 2007, "How to project customer
retention", Journal of Interactive Marketing 21(1)).

Story for subscriptions with discrete renewal opportunities (one per period: month, year, ...): at each
renewal a customer cancels with probability ``theta``, constant for that customer; across customers
``theta ~ Beta(alpha, beta)``. With ``T`` the period in which the customer cancels (T = 1, 2, ...):

    P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)
    S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta)
    retention rate r(t) = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)   (rises with t)

The log-likelihood of a cohort is ``sum_t n_t log P(T = t) + n_alive log S(t_max)`` where ``n_t`` customers
cancelled at period ``t`` and ``n_alive`` are still subscribed (right-censored) -- or, for individual data,
one term per customer. Time is counted in renewal periods; ``time_unit`` names the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from patronage.analytics.clv.data import FloatArray, TimeUnit, wdot
from patronage.analytics.clv.errors import CLVInputError
from patronage.analytics.clv.fitting import maximize
from patronage.analytics.clv.special import hyp2f1


@dataclass(frozen=True)
class SurvivalCounts:
    """``churned[i]`` customers cancelled in period ``churn_period[i]``; ``censored[j]`` customers are still
    subscribed after ``censor_period[j]`` periods."""

    churn_period: FloatArray
    churned: FloatArray
    censor_period: FloatArray
    censored: FloatArray

    @classmethod
    def from_survivors(cls, survivors: npt.ArrayLike) -> SurvivalCounts:
        """From a cohort's head count at the start and after each period: ``[1000, 869, 743, ...]``."""
        s = np.asarray(survivors, dtype=np.float64).ravel()
        if s.size < 2 or np.any(np.diff(s) > 0) or np.any(s < 0) or s[0] <= 0:
            raise CLVInputError("survivors must be non-increasing and start above zero", field="survivors")
        periods = np.arange(1, s.size, dtype=np.float64)
        return cls(periods, s[:-1] - s[1:], np.array([s.size - 1.0]), np.array([s[-1]]))

    @classmethod
    def from_durations(cls, periods: npt.ArrayLike, active: npt.ArrayLike) -> SurvivalCounts:
        """From individual subscriptions: ``periods`` paid so far and whether each one is still ``active``."""
        t = np.asarray(periods, dtype=np.float64).ravel()
        alive = np.asarray(active, dtype=bool).ravel()
        if t.shape != alive.shape or np.any(t < 1) or np.any(t != np.floor(t)):
            raise CLVInputError("periods must be integers >= 1, one per subscription", field="periods")
        churn_t, churn_n = np.unique(t[~alive], return_counts=True)
        cens_t, cens_n = np.unique(t[alive], return_counts=True)
        return cls(churn_t, churn_n.astype(np.float64), cens_t, cens_n.astype(np.float64))

    @property
    def n_customers(self) -> float:
        return float(self.churned.sum() + self.censored.sum())


@dataclass(frozen=True)
class SBGParams:
    """Fitted sBG parameters; one period is one renewal opportunity, named by ``time_unit``."""

    alpha: float
    beta: float
    log_likelihood: float
    n_customers: float
    time_unit: TimeUnit

    @property
    def mean_churn_probability(self) -> float:
        """E[theta] = alpha / (alpha + beta): the share of a new cohort that cancels at the first renewal."""
        return self.alpha / (self.alpha + self.beta)


def loglik_and_grad(log_params: npt.ArrayLike, data: SurvivalCounts) -> tuple[float, FloatArray]:
    """Total log-likelihood at ``exp(log_params) = (alpha, beta)`` and its gradient in log-parameters."""
    alpha, beta = np.exp(np.asarray(log_params, dtype=np.float64))
    tc, nc, ts, ns = data.churn_period, data.churned, data.censor_period, data.censored
    base = special.betaln(alpha, beta)
    d_base_a = special.digamma(alpha) - special.digamma(alpha + beta)
    d_base_b = special.digamma(beta) - special.digamma(alpha + beta)
    # log P(T = t) = betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)
    log_pmf = special.betaln(alpha + 1.0, beta + tc - 1.0) - base
    psi_c = special.digamma(alpha + beta + tc)
    d_pmf_a = special.digamma(alpha + 1.0) - psi_c - d_base_a
    d_pmf_b = special.digamma(beta + tc - 1.0) - psi_c - d_base_b
    # log S(t) = betaln(alpha, beta + t) - betaln(alpha, beta)
    log_surv = special.betaln(alpha, beta + ts) - base
    psi_s = special.digamma(alpha + beta + ts)
    d_surv_a = special.digamma(alpha) - psi_s - d_base_a
    d_surv_b = special.digamma(beta + ts) - psi_s - d_base_b
    value = float(wdot(nc, log_pmf) + wdot(ns, log_surv))
    grad = np.array([wdot(nc, d_pmf_a) + wdot(ns, d_surv_a), wdot(nc, d_pmf_b) + wdot(ns, d_surv_b)])
    grad *= np.array([alpha, beta])
    return value, grad


def fit_sbg(
    data: SurvivalCounts | npt.ArrayLike,
    *,
    time_unit: TimeUnit = TimeUnit.YEARS,
    start: tuple[float, float] = (1.0, 1.0),
) -> SBGParams:
    """Maximum-likelihood sBG fit; ``data`` is :class:`SurvivalCounts` or a survivors series."""
    counts = data if isinstance(data, SurvivalCounts) else SurvivalCounts.from_survivors(data)
    n = counts.n_customers
    result = maximize(lambda theta: loglik_and_grad(theta, counts), np.array(start), n_customers=n)
    alpha, beta = (float(v) for v in result.params)
    return SBGParams(alpha, beta, result.log_likelihood, n, TimeUnit(time_unit))


def survival(params: SBGParams, t: npt.ArrayLike) -> FloatArray:
    """S(t): share of a fresh cohort still subscribed after ``t`` periods (t = 0, 1, 2, ...)."""
    ta = np.asarray(t, dtype=np.float64)
    a, b = params.alpha, params.beta
    return np.asarray(np.exp(special.betaln(a, b + ta) - special.betaln(a, b)), dtype=np.float64)


def churn_probability(params: SBGParams, t: npt.ArrayLike) -> FloatArray:
    """P(T = t): share of a fresh cohort cancelling at period ``t`` (t = 1, 2, ...)."""
    ta = np.asarray(t, dtype=np.float64)
    a, b = params.alpha, params.beta
    return np.asarray(np.exp(special.betaln(a + 1.0, b + ta - 1.0) - special.betaln(a, b)), dtype=np.float64)


def retention_rate(params: SBGParams, t: npt.ArrayLike) -> FloatArray:
    """r(t) = (beta + t - 1) / (alpha + beta + t - 1): the share of period t-1's survivors renewing at t."""
    ta = np.asarray(t, dtype=np.float64)
    return (params.beta + ta - 1.0) / (params.alpha + params.beta + ta - 1.0)


def discounted_expected_residual_lifetime(
    params: SBGParams, discount_rate: float, renewals_made: npt.ArrayLike
) -> FloatArray:
    """DERL (Fader & Hardie 2010): expected discounted number of future payments of an active customer.

    For a customer who has made ``n - 1 = renewals_made`` renewals and now faces renewal ``n``, with one
    payment at the start of every period and ``d`` the discount rate per period::

        DERL = sum_{k>=0} S(n + k) / S(n - 1) / (1 + d)^k
             = (beta + n - 1) / (alpha + beta + n - 1) * 2F1(1, beta + n; alpha + beta + n; 1 / (1 + d))

    The next payment (if they renew) is not discounted. Multiply by the payment per period for a value.
    """
    if discount_rate <= 0:
        raise CLVInputError("discount_rate must be positive for the sum to converge", field="discount_rate")
    n = np.asarray(renewals_made, dtype=np.float64) + 1.0
    a, b = params.alpha, params.beta
    z = np.full_like(n, 1.0 / (1.0 + discount_rate))
    return (b + n - 1.0) / (a + b + n - 1.0) * hyp2f1(1.0, b + n, a + b + n, z)
