"""Customer lifetime value from a purchase model and a spend model, with explicit discounting."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from patronage.analytics.clv.data import FloatArray, TimeUnit
from patronage.analytics.clv.errors import CLVInputError


class PurchaseModel(Protocol):
    """What BG/NBD, MBG/NBD and Pareto/NBD parameters offer; every ``t`` is in ``time_unit``."""

    @property
    def time_unit(self) -> TimeUnit: ...

    def p_alive(self, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray: ...  # noqa: N803

    def expected_purchases(
        self,
        t: npt.ArrayLike,
        x: npt.ArrayLike,
        t_x: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray: ...

    def expected_purchases_in(self, t: npt.ArrayLike) -> FloatArray: ...


def per_period_rate(rate: float, periods_per_rate: float) -> float:
    """Convert a discount rate quoted per long period into the equivalent rate per short period.

    ``per_period_rate(0.10, 52)`` is the weekly rate equivalent to 10% a year: ``1.10 ** (1/52) - 1``.
    """
    if rate <= -1.0 or periods_per_rate <= 0:
        raise CLVInputError("rate must exceed -100% and periods_per_rate must be positive", field="rate")
    return float((1.0 + rate) ** (1.0 / periods_per_rate) - 1.0)


def discounted_clv(
    model: PurchaseModel,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
    expected_spend: npt.ArrayLike,
    *,
    horizon: int,
    discount_rate: float,
    period: float = 1.0,
) -> FloatArray:
    """Expected discounted value of each customer's purchases over the next ``horizon`` periods.

    ``period`` is the length of one discounting period in the model's time unit (``t_x``, ``T`` too), and
    ``discount_rate`` is the rate *per such period* (see :func:`per_period_rate`). With
    ``E(t) = E[Y(t) | x, t_x, T]`` the conditional expected number of purchases in the next ``t`` units,
    and ``m`` the expected value per purchase (e.g. Gamma-Gamma's conditional expected spend, times a
    margin if you want profit rather than revenue)::

        CLV = m * sum_{k=1}^{horizon} [E(k * period) - E((k - 1) * period)] / (1 + d)^k

    i.e. purchases expected during period ``k`` are discounted as if they happened at its end. This
    approximation to the continuous-time discounted expected transactions tends to it as ``period``
    shrinks; with no discount (``d = 0``) it equals ``m * E(horizon * period)`` exactly.
    """
    if horizon < 1:
        raise CLVInputError("horizon must be at least one period", field="horizon")
    if discount_rate <= -1.0:
        raise CLVInputError("discount_rate must exceed -100%", field="discount_rate")
    if period <= 0:
        raise CLVInputError("period must be positive", field="period")
    xa, txa, ta, spend = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, t_x, T, expected_spend)))
    total = np.zeros(xa.shape)
    previous = np.zeros(xa.shape)
    for k in range(1, horizon + 1):
        current = model.expected_purchases(np.full(xa.shape, k * period), xa, txa, ta)
        total += (current - previous) / (1.0 + discount_rate) ** k
        previous = current
    return np.asarray(spend * total, dtype=np.float64)
