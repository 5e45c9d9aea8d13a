"""Per-customer scores: RFM (from sql.rfm_scores) and predicted values from the CLV models.

BG/NBD (purchases) and Gamma-Gamma (spend per purchase) are fitted on the workspace's own history with
:mod:`patronage.analytics.clv`, purchases counted per local day, time in weeks, calibration ending on the
as-of day. Predictions per customer: ``p_alive``, ``expected_purchases_90d`` and ``expected_clv`` -- the
revenue expected over ``clv_horizon_months`` months, discounted monthly at the yearly
``clv_discount_rate``. When a model cannot be fitted (too little data), those columns stay null. Large
workspaces are fitted on a seeded random sample of ``MAX_FIT_CUSTOMERS`` customers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from patronage.analytics import sql
from patronage.analytics.calendar import day_number
from patronage.analytics.compute import Options
from patronage.analytics.engine import Engine

log = logging.getLogger("patronage.analytics.scoring")

WEEK_DAYS = 7.0
MONTH_DAYS = 365.2425 / 12.0
MIN_FIT_CUSTOMERS = 20
# The models have 4 + 3 parameters: a seeded random sample of this many customers estimates them as well
# as everyone does, at a fraction of the time. Predictions are made for every customer.
MAX_FIT_CUSTOMERS = 200_000


@dataclass(frozen=True)
class ModelSummary:
    fitted: bool
    reason: str | None = None
    bgnbd: dict[str, float] | None = None
    gamma_gamma: dict[str, float] | None = None


def _unique_rows(
    x: npt.NDArray[np.int64], t_x: npt.NDArray[np.int64], age: npt.NDArray[np.int64]
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
    """Distinct (x, t_x, age) day-count rows and each customer's row, via one packed int64 key."""
    bits = 21  # day counts below 2**21 (5,700 years); x below 2**21 purchase days
    if max(int(x.max(initial=0)), int(t_x.max(initial=0)), int(age.max(initial=0))) >= 1 << bits:
        raise ValueError("customer histories too long to pack")
    key = (x << (2 * bits)) | (t_x << bits) | age
    unique, inverse = np.unique(key, return_inverse=True)
    mask = (1 << bits) - 1
    return [unique >> (2 * bits), (unique >> bits) & mask, unique & mask], inverse.ravel()


def predict(
    x: npt.NDArray[np.int64],
    t_x_days: npt.NDArray[np.int64],
    age_days: npt.NDArray[np.int64],
    repeat_revenue: npt.NDArray[np.float64],
    *,
    horizon_months: int,
    discount_rate: float,
) -> tuple[dict[str, npt.NDArray[np.float64]] | None, ModelSummary]:
    """Fit BG/NBD + Gamma-Gamma and predict per customer; (None, reason) when a model cannot be fitted."""
    from patronage.analytics.clv import (
        CLVFitError,
        CLVInputError,
        RFMStats,
        TimeUnit,
        discounted_clv,
        fit_bgnbd,
        fit_gamma_gamma,
        per_period_rate,
    )

    fit_mask = age_days > 0
    if int(fit_mask.sum()) > MAX_FIT_CUSTOMERS:
        chosen = np.random.default_rng(0).choice(np.flatnonzero(fit_mask), MAX_FIT_CUSTOMERS, replace=False)
        fit_mask = np.zeros_like(fit_mask)
        fit_mask[chosen] = True
    if int(fit_mask.sum()) < MIN_FIT_CUSTOMERS or int((x[fit_mask] > 0).sum()) < 2:
        return None, ModelSummary(False, "not enough purchase history to fit BG/NBD")
    mean_spend = np.where(x > 0, repeat_revenue / np.maximum(x, 1), np.nan)
    spend_mask = fit_mask & (x > 0) & (mean_spend > 0)
    try:
        stats = RFMStats.from_arrays(
            x[fit_mask], t_x_days[fit_mask] / WEEK_DAYS, age_days[fit_mask] / WEEK_DAYS, time_unit=TimeUnit.WEEKS
        )
        purchases = fit_bgnbd(stats)
        if int(spend_mask.sum()) < 2:
            raise CLVInputError("too few repeat buyers with positive spend", field="x")
        spend = fit_gamma_gamma(x[spend_mask], mean_spend[spend_mask])
        if spend.q <= 1.0:
            raise CLVFitError("Gamma-Gamma q <= 1: the mean spend is unbounded")
    except (CLVFitError, CLVInputError, FloatingPointError, ValueError) as exc:
        log.warning("CLV models not fitted: %s", exc)
        return None, ModelSummary(False, str(exc))
    # Many customers share (x, t_x, T): evaluate each distinct row once.
    (ux, utx, uage), inverse = _unique_rows(x, t_x_days, np.maximum(age_days, 1))
    xw, txw, tw = ux.astype(np.float64), utx / WEEK_DAYS, uage / WEEK_DAYS
    p_alive = purchases.p_alive(xw, txw, tw)
    expected_90 = purchases.expected_purchases(np.full(xw.shape, 90.0 / WEEK_DAYS), xw, txw, tw)
    discounted_purchases = discounted_clv(
        purchases, xw, txw, tw, np.ones(xw.shape), horizon=horizon_months,
        discount_rate=per_period_rate(discount_rate, 12.0), period=MONTH_DAYS / WEEK_DAYS,
    )
    with np.errstate(invalid="ignore"):
        clean_mean = np.where((x > 0) & (mean_spend > 0), mean_spend, 0.0)
    clean_x = np.where(clean_mean > 0, x, 0)  # no usable spend history: the population mean
    expected_spend = spend.conditional_expected_spend(clean_x, clean_mean)
    out = {
        "p_alive": p_alive[inverse],
        "expected_purchases_90d": expected_90[inverse],
        "expected_clv": discounted_purchases[inverse] * expected_spend,
    }
    summary = ModelSummary(
        True,
        bgnbd={"r": purchases.r, "alpha": purchases.alpha, "a": purchases.a, "b": purchases.b,
               "log_likelihood": purchases.log_likelihood},
        gamma_gamma={"p": spend.p, "q": spend.q, "gamma": spend.gamma, "log_likelihood": spend.log_likelihood},
    )
    return out, summary


def score_customers(
    engine: Engine, options: Options, *, horizon_months: int = 12, discount_rate: float = 0.10
) -> tuple[pa.Table, ModelSummary]:
    """One row per purchasing customer: RFM scores and segment, and the model predictions (or nulls).

    Needs the ``rfm`` relation (compute.rfm_result) and ``customer_days``.
    """
    rfm = engine.query(
        "SELECT customer_id, recency_days, frequency, monetary, r, f, m, segment FROM rfm ORDER BY customer_id"
    )
    inputs = engine.query(sql.CLV_INPUTS.format(as_of=day_number(options.as_of)))

    def col(table: pa.Table, name: str) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False))

    ids = col(inputs, "customer_id").astype(np.int64)
    if not np.array_equal(ids, col(rfm, "customer_id").astype(np.int64)):
        raise RuntimeError("RFM and CLV inputs disagree on the customers")
    predictions, summary = predict(
        col(inputs, "x").astype(np.int64), col(inputs, "t_x_days").astype(np.int64),
        col(inputs, "age_days").astype(np.int64), col(inputs, "repeat_revenue").astype(np.float64),
        horizon_months=horizon_months, discount_rate=discount_rate,
    )
    columns = {name: rfm.column(name) for name in rfm.column_names}
    for name in ("p_alive", "expected_purchases_90d", "expected_clv"):
        values = None if predictions is None else predictions[name]
        columns[name] = pa.array(values if values is not None else [None] * len(ids), pa.float64())
    return pa.table(columns), summary
