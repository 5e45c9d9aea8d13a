"""Vectorised simulation of BG/NBD customer bases (for benchmarks, demos and parameter-recovery tests).

For each customer: a birth day uniform over the first ``acquisition_days`` of the window, age
``T = (observation_days - 1 - birth) / unit``, ``lambda ~ Gamma(r, alpha)`` and ``p ~ Beta(a, b)``.
The number of Poisson events in (0, T] is ``n ~ Poisson(lambda T)``; the customer dies with the ``K``-th
repeat purchase, ``K ~ Geometric(p)``; so ``x = min(n, K)``. Given n events, their times are uniform order
statistics on (0, T), so the x-th one is ``t_x = T * Beta(x, n - x + 1)``. No loop over customers.

With ``round_to_days`` (the default) ``t_x`` is rounded *up* to a whole day, as a daily transaction log
records it, so that the statistics compress like real data; the day rounding slightly perturbs the model
(by less than a day per customer), which does not matter for timing or for comparing two fitters on the
same data.
"""

from __future__ import annotations

import numpy as np

from patronage.analytics.clv.data import FloatArray, RFMStats, TimeUnit


def simulate_bgnbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    seed: int,
    observation_days: int = 273,
    acquisition_days: int = 84,
    time_unit: TimeUnit = TimeUnit.WEEKS,
    round_to_days: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Simulate (x, t_x, T) for ``n_customers`` (t_x and T in ``time_unit``; ``alpha`` per ``time_unit``).

    The defaults mirror CDNOW: births over 12 weeks, observation to the end of week 39.
    """
    if not 0 < acquisition_days < observation_days:
        raise ValueError("need 0 < acquisition_days < observation_days")
    rng = np.random.default_rng(seed)
    unit_days = TimeUnit(time_unit).days
    birth = rng.integers(0, acquisition_days, size=n_customers)
    age_days = (observation_days - 1 - birth).astype(np.float64)
    age = age_days / unit_days
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n_customers)
    p = rng.beta(a, b, size=n_customers)
    events = rng.poisson(lam * age)
    death_at = rng.geometric(np.clip(p, 1e-300, 1.0))
    x = np.minimum(events, death_at)
    has = x > 0
    frac = rng.beta(np.where(has, x, 1), np.where(has, events - x + 1, 1))
    t_x_days = np.where(has, frac * age_days, 0.0)
    if round_to_days:
        t_x_days = np.where(has, np.minimum(np.maximum(np.ceil(t_x_days), 1.0), age_days), 0.0)
    return x.astype(np.float64), t_x_days / unit_days, age


def simulate_bgnbd_stats(n_customers: int, *, r: float, alpha: float, a: float, b: float, seed: int) -> RFMStats:
    """:func:`simulate_bgnbd` with the CDNOW-like defaults, compressed to :class:`RFMStats` (weeks)."""
    x, t_x, age = simulate_bgnbd(n_customers, r=r, alpha=alpha, a=a, b=b, seed=seed)
    return RFMStats.from_arrays(x, t_x, age, time_unit=TimeUnit.WEEKS)
