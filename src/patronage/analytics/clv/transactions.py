"""From a transaction log to per-customer (x, t_x, T), spend and holdout counts, in explicit units.

Conventions (those of the CLV literature and of the CDNOW studies):

* Purchases are counted per *day*: several purchases by one customer on one calendar day are one
  transaction whose value is the day's total. Pass dates in the workspace's local time zone, because the
  day boundary decides what is merged.
* A customer's first purchase (their "birth") is not a repeat purchase; ``x`` counts the purchase days
  after it up to and including ``calibration_end``.
* Times are day differences divided by the unit's length: ``t_x = (last day - first day) / unit`` and
  ``T = (calibration_end - first day) / unit``. (CDNOW: first purchase 1997-01-01, calibration end
  1997-09-30 gives T = 272 / 7 = 38.86 weeks.)
* The holdout period is ``(calibration_end, holdout_end]``; ``holdout_x`` counts purchase days in it.
* Only customers whose first purchase falls on or before ``calibration_end`` are summarised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from patronage.analytics.clv.data import FloatArray, IntArray, RFMStats, TimeUnit, as_day, weighted_bincount
from patronage.analytics.clv.errors import CLVInputError

DayArray = npt.NDArray[np.datetime64]


@dataclass(frozen=True)
class DailyPurchases:
    """One row per (customer, purchase day), sorted by customer then day; ``amount`` is the day's total."""

    customer_ids: npt.NDArray[np.generic]  # distinct customer ids; ``customer`` indexes into it
    customer: IntArray
    day: DayArray
    amount: FloatArray | None

    @property
    def first_day(self) -> DayArray:
        """Each customer's first purchase day (aligned with ``customer_ids``)."""
        starts = np.flatnonzero(np.r_[True, self.customer[1:] != self.customer[:-1]])
        return self.day[starts]

    @property
    def is_repeat(self) -> npt.NDArray[np.bool_]:
        """True for rows that are not the customer's first purchase day."""
        return np.concatenate([[False], self.customer[1:] == self.customer[:-1]])


def daily_purchases(
    customer_id: npt.ArrayLike, timestamp: npt.ArrayLike, amount: npt.ArrayLike | None = None
) -> DailyPurchases:
    """Collapse a transaction log to one row per customer and calendar day (amounts summed)."""
    ids = np.asarray(customer_id)
    days = np.asarray(timestamp).astype("datetime64[D]")
    if ids.ndim != 1 or ids.shape != days.shape:
        raise CLVInputError("customer_id and timestamp must be 1-D and of equal length", field="timestamp")
    if ids.size == 0:
        raise CLVInputError("the transaction log is empty", field="customer_id")
    if np.any(np.isnat(days)):
        raise CLVInputError("timestamps must not be missing", field="timestamp")
    values: FloatArray | None = None
    if amount is not None:
        values = np.asarray(amount, dtype=np.float64)
        if values.shape != ids.shape or not np.all(np.isfinite(values)):
            raise CLVInputError("amount must hold one finite number per transaction", field="amount")
    customer_ids, code = np.unique(ids, return_inverse=True)
    code = code.astype(np.int64).ravel()
    day_number = days.astype(np.int64)
    span = int(day_number.max() - day_number.min()) + 1
    key = code * span + (day_number - day_number.min())
    ukey, inverse = np.unique(key, return_inverse=True)
    cust, offset = np.divmod(ukey, span)
    day = (offset + day_number.min()).astype("datetime64[D]")
    total = None if values is None else weighted_bincount(inverse.ravel(), values, ukey.size)
    return DailyPurchases(customer_ids, cust.astype(np.int64), day, total)


@dataclass(frozen=True)
class CalibrationSummary:
    """Per-customer calibration statistics and holdout outcome; times in ``time_unit``.

    ``mean_spend`` is the average value of the *repeat* purchase days in calibration (the quantity the
    Gamma-Gamma model describes); NaN for customers without repeat purchases or logs without amounts.
    """

    customer_id: npt.NDArray[np.generic]
    first_purchase: DayArray
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    mean_spend: FloatArray
    holdout_x: FloatArray
    holdout_length: float
    calibration_end: np.datetime64
    time_unit: TimeUnit

    def rfm(self) -> RFMStats:
        """The compressed sufficient statistics for fitting."""
        return RFMStats.from_arrays(self.x, self.t_x, self.T, time_unit=self.time_unit)


def summarize(
    daily: DailyPurchases,
    *,
    calibration_end: object,
    holdout_end: object = None,
    time_unit: TimeUnit = TimeUnit.WEEKS,
) -> CalibrationSummary:
    """(x, t_x, T), mean repeat spend and holdout counts of every customer born by ``calibration_end``."""
    cal_end = as_day(calibration_end, "calibration_end")
    hold_end = cal_end if holdout_end is None else as_day(holdout_end, "holdout_end")
    if hold_end < cal_end:
        raise CLVInputError("holdout_end must not precede calibration_end", field="holdout_end")
    unit_days = TimeUnit(time_unit).days
    n = daily.customer_ids.size
    first = daily.first_day
    born = first <= cal_end
    if not np.any(born):
        raise CLVInputError("no customer made a first purchase by calibration_end", field="calibration_end")

    repeat = daily.is_repeat
    in_cal = repeat & (daily.day <= cal_end)
    in_hold = repeat & (daily.day > cal_end) & (daily.day <= hold_end)
    x = weighted_bincount(daily.customer, in_cal, n)
    holdout_x = weighted_bincount(daily.customer, in_hold, n)
    first_num = first.astype(np.int64)
    last_num = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last_num, daily.customer[in_cal], daily.day[in_cal].astype(np.int64))
    t_x = np.where(x > 0, (last_num - first_num) / unit_days, 0.0)
    T = (cal_end.astype(np.int64) - first_num) / unit_days  # noqa: N806
    if daily.amount is None:
        mean_spend = np.full(n, np.nan)
    else:
        spend = weighted_bincount(daily.customer, np.where(in_cal, daily.amount, 0.0), n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_spend = np.where(x > 0, spend / x, np.nan)
    # Customers born on the calibration end day have T = 0: nothing to learn from them, drop them too.
    keep = born & (T > 0)
    return CalibrationSummary(
        customer_id=daily.customer_ids[keep],
        first_purchase=first[keep],
        x=x[keep],
        t_x=t_x[keep],
        T=T[keep],
        mean_spend=mean_spend[keep],
        holdout_x=holdout_x[keep],
        holdout_length=float((hold_end - cal_end).astype(np.int64)) / unit_days,
        calibration_end=cal_end,
        time_unit=TimeUnit(time_unit),
    )


def summarize_transactions(
    customer_id: npt.ArrayLike,
    timestamp: npt.ArrayLike,
    amount: npt.ArrayLike | None = None,
    *,
    calibration_end: object,
    holdout_end: object = None,
    time_unit: TimeUnit = TimeUnit.WEEKS,
) -> CalibrationSummary:
    """:func:`daily_purchases` followed by :func:`summarize` (see the module docstring for the rules)."""
    return summarize(
        daily_purchases(customer_id, timestamp, amount),
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        time_unit=time_unit,
    )
