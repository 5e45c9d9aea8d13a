"""Shared maximum-likelihood machinery: optimise in log-parameter space with exact gradients.

Every model supplies ``loglik(log_params) -> (total log-likelihood, gradient w.r.t. log_params)``; the
gradient is analytic (digamma, hand-derived series), never a finite difference. Working on the log scale
keeps every parameter positive without constraints, and ``d/d log(theta) = theta * d/d theta``.

The optimiser minimises the *mean* negative log-likelihood (the total divided by the number of
customers), so that tolerances mean the same thing for 2,000 customers and for a million.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from patronage.analytics.clv.data import FloatArray
from patronage.analytics.clv.errors import CLVFitError

LogLikelihood = Callable[[FloatArray], tuple[float, FloatArray]]

# Box in log space: parameters between e^-25 (~1e-11) and e^25 (~7e10). Far beyond any meaningful value;
# it only stops a line search from wandering into overflow.
LOG_BOUND = 25.0
_GRADIENT_OK = 1e-5  # largest acceptable |gradient of the mean log-likelihood| when the optimiser stops


@dataclass(frozen=True)
class MLEResult:
    """The maximiser (natural scale), the maximised total log-likelihood, and optimiser diagnostics."""

    params: FloatArray
    log_likelihood: float
    iterations: int
    gradient_norm: float


def maximize(
    loglik: LogLikelihood,
    start: FloatArray,
    *,
    n_customers: float,
    max_iterations: int = 2000,
) -> MLEResult:
    """Maximise ``loglik`` over log-parameters starting from ``start`` (natural scale, all > 0).

    Uses L-BFGS-B with ``jac=True`` and tight tolerances (relative change 1e-15, projected gradient
    1e-10 on the mean log-likelihood). Raises :class:`CLVFitError` if it stops far from a stationary point.
    """
    scale = 1.0 / n_customers

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = loglik(theta)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            # A line search probed a point the likelihood cannot be evaluated at; steer it back.
            return float("inf"), np.zeros_like(theta)
        return -value * scale, -grad * scale

    theta0 = np.log(np.asarray(start, dtype=np.float64))
    result = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * theta0.size,
        options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    value, grad = loglik(theta)
    grad_norm = float(np.max(np.abs(grad))) * scale
    at_bound = np.abs(theta) >= LOG_BOUND - 1e-9
    interior_norm = float(np.max(np.abs(np.where(at_bound, 0.0, grad)))) * scale
    if not np.isfinite(value) or interior_norm > _GRADIENT_OK:
        raise CLVFitError(
            f"maximum likelihood did not converge ({result.message!s}; |gradient| = {grad_norm:.2e})",
            iterations=int(result.nit),
        )
    return MLEResult(np.exp(theta), float(value), int(result.nit), grad_norm)


def mean_rate_start(x: FloatArray, T: FloatArray, weight: FloatArray) -> float:  # noqa: N803
    """A scale-aware starting value for a gamma *scale* parameter: mean age over mean repeat count.

    With shape 1 the implied mean purchase rate is then the observed one, whatever the time unit.
    """
    total = float(weight.sum())
    mean_x = float((x * weight).sum()) / total
    mean_t = float((T * weight).sum()) / total
    return max(mean_t / max(mean_x, 1e-3), 1e-3)
