"""Calibration/holdout validation: the two standard pictures of the BTYD literature.

1. *Conditional expectations* (FHL 2005, Figure 5): customers grouped by their calibration repeat count
   x = 0, 1, ..., ``max_x``+; for each group, the mean number of purchases actually made in the holdout
   period next to the mean the model predicted, ``E[Y(holdout length) | x, t_x, T]``.
2. *Tracking curve* (FHL 2005, Figure 3): cumulative repeat transactions of the whole cohort, period by
   period across calibration and holdout, actual against ``sum_i E[X(t - s_i)]`` where ``s_i`` is
   customer i's first-purchase time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patronage.analytics.clv.data import FloatArray, IntArray, TimeUnit, as_day, weighted_bincount
from patronage.analytics.clv.errors import CLVInputError
from patronage.analytics.clv.transactions import CalibrationSummary, DailyPurchases
from patronage.analytics.clv.value import PurchaseModel


@dataclass(frozen=True)
class ConditionalExpectations:
    """Per calibration-frequency group: ``x`` (the last group is "``x`` or more"), head count, means."""

    x: IntArray
    n_customers: IntArray
    actual: FloatArray
    predicted: FloatArray
    holdout_length: float
    time_unit: TimeUnit
    total_actual: float
    total_predicted: float

    @property
    def labels(self) -> list[str]:
        """ "0", "1", ..., "7+" -- the x-axis of the classic plot."""
        last = int(self.x[-1])
        return [str(v) if v < last else f"{v}+" for v in self.x.tolist()]


def conditional_expectations(
    model: PurchaseModel, summary: CalibrationSummary, *, max_x: int = 7
) -> ConditionalExpectations:
    """Holdout purchases, actual vs predicted, grouped by calibration x (censored at ``max_x``)."""
    _check_units(model, summary.time_unit)
    if summary.holdout_length <= 0:
        raise CLVInputError("the summary has no holdout period", field="holdout_end")
    predicted = model.expected_purchases(
        np.full(summary.x.shape, summary.holdout_length), summary.x, summary.t_x, summary.T
    )
    group = np.minimum(summary.x, max_x).astype(np.int64)
    counts = np.bincount(group, minlength=max_x + 1)
    present = counts > 0
    with np.errstate(invalid="ignore"):
        actual_mean = weighted_bincount(group, summary.holdout_x, max_x + 1) / counts
        predicted_mean = weighted_bincount(group, predicted, max_x + 1) / counts
    return ConditionalExpectations(
        x=np.arange(max_x + 1, dtype=np.int64)[present],
        n_customers=counts[present].astype(np.int64),
        actual=actual_mean[present],
        predicted=predicted_mean[present],
        holdout_length=summary.holdout_length,
        time_unit=summary.time_unit,
        total_actual=float(summary.holdout_x.sum()),
        total_predicted=float(predicted.sum()),
    )


@dataclass(frozen=True)
class TrackingCurve:
    """Cumulative repeat transactions at the end of each period since ``origin``, actual vs expected."""

    t: FloatArray  # 1, 2, ..., periods (in time_unit since origin)
    actual: FloatArray
    expected: FloatArray
    calibration_end: float  # where calibration ends on the same axis
    time_unit: TimeUnit

    @property
    def actual_incremental(self) -> FloatArray:
        return np.diff(self.actual, prepend=0.0)

    @property
    def expected_incremental(self) -> FloatArray:
        return np.diff(self.expected, prepend=0.0)


def tracking_curve(
    model: PurchaseModel,
    daily: DailyPurchases,
    *,
    origin: object,
    calibration_end: object,
    periods: int,
) -> TrackingCurve:
    """Cumulative repeat transactions per period (of the model's unit) of the cohort born by calibration_end.

    Period ``k`` covers the calendar days ``[origin + (k-1) u, origin + k u)`` with ``u`` the unit's length
    in days. The expected count is ``sum_i E[X(a_ik)]`` with ``a_ik = (last day of period k - birth day of
    i) / u``, the day-count convention of ``T`` (so at the calibration end ``a_i = T_i``). Customers are
    grouped by birth day and the whole (period x birth day) grid is one vectorised model call.
    """
    if periods < 1:
        raise CLVInputError("periods must be at least 1", field="periods")
    unit_days = model.time_unit.days
    start = as_day(origin, "origin")
    cal_end = as_day(calibration_end, "calibration_end")
    first = daily.first_day
    if np.any(first < start):
        raise CLVInputError("some customers were born before the origin", field="origin")
    in_cohort = first <= cal_end
    repeat = daily.is_repeat & in_cohort[daily.customer]
    offsets = np.sort((daily.day[repeat] - start).astype(np.float64))
    t = np.arange(1, periods + 1, dtype=np.float64)
    actual = np.searchsorted(offsets, t * unit_days, side="left").astype(np.float64)

    birth_days, n_born = np.unique((first[in_cohort] - start).astype(np.int64), return_counts=True)
    # Age at the last day of period k, with the day-count convention of T: (last day - birth day) / unit.
    last_day = t * unit_days - 1.0
    horizon = np.maximum(last_day[:, None] - birth_days[None, :], 0.0) / unit_days
    expected = np.einsum("ij,j->i", model.expected_purchases_in(horizon), n_born.astype(np.float64))
    return TrackingCurve(
        t=t,
        actual=actual,
        expected=np.asarray(expected, dtype=np.float64),
        calibration_end=float((cal_end - start).astype(np.int64) + 1) / unit_days,
        time_unit=model.time_unit,
    )


def _check_units(model: PurchaseModel, unit: TimeUnit) -> None:
    if model.time_unit != unit:
        raise CLVInputError(f"the model was fitted in {model.time_unit} but the data are in {unit}", field="time_unit")
