"""Holdout validation and CLV on CDNOW.

Cross-checks (not from the papers' tables but from an independent implementation on the same data): the
BTYDplus R package's CDNOW demo prints, per calibration frequency x = 0..5, the actual mean holdout purchases
0.24, 0.70, 1.39, 1.56, 2.53, 2.95, the BG/NBD predictions 0.23, 0.52, 1.04, 1.52, 2.16, 2.65, the CBG/NBD
(= MBG/NBD) predictions 0.19, 0.55, 1.05, 1.49, 2.10, 2.56 and the Pareto/NBD predictions 0.14, 0.60, 1.20,
1.71, 2.40, 2.91; and aggregate holdout errors of -12.1% (BG/NBD), -16.2% (CBG/NBD), -11.5% (Pareto/NBD).
FHL 2005 report that by week 78 BG/NBD under-forecasts cumulative repeat sales by about 4% and Pareto/NBD
by about 2%.
"""

from __future__ import annotations

import numpy as np
import pytest

from patronage.analytics.clv import (
    BGNBDParams,
    CalibrationSummary,
    CLVInputError,
    DailyPurchases,
    MBGNBDParams,
    ParetoNBDParams,
    TimeUnit,
    conditional_expectations,
    conditional_expected_spend,
    discounted_clv,
    fit_gamma_gamma,
    per_period_rate,
    tracking_curve,
)
from patronage.analytics.clv.datasets import CDNOW_CALIBRATION_END, CDNOW_START

ACTUAL = [0.24, 0.70, 1.39, 1.56, 2.53, 2.95]


@pytest.mark.parametrize(
    ("fixture", "predicted", "total_error"),
    [
        ("cdnow_bgnbd", [0.23, 0.52, 1.04, 1.52, 2.16, 2.65], -0.121),
        ("cdnow_mbgnbd", [0.19, 0.55, 1.05, 1.49, 2.10, 2.56], -0.162),
        ("cdnow_paretonbd", [0.14, 0.60, 1.20, 1.71, 2.40, 2.91], -0.115),
    ],
)
def test_conditional_expectations_table(
    request: pytest.FixtureRequest,
    cdnow_summary: CalibrationSummary,
    fixture: str,
    predicted: list[float],
    total_error: float,
) -> None:
    model = request.getfixturevalue(fixture)
    table = conditional_expectations(model, cdnow_summary)
    assert table.labels == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table.n_customers.sum() == 2_357
    np.testing.assert_allclose(table.actual[:6], ACTUAL, atol=0.005)
    np.testing.assert_allclose(table.predicted[:6], predicted, atol=0.005)
    assert table.total_actual == 1_882
    assert table.total_predicted / table.total_actual - 1 == pytest.approx(total_error, abs=5e-4)


def test_tracking_curve(
    cdnow_daily: DailyPurchases, cdnow_bgnbd: BGNBDParams, cdnow_paretonbd: ParetoNBDParams
) -> None:
    curves = [
        tracking_curve(m, cdnow_daily, origin=CDNOW_START, calibration_end=CDNOW_CALIBRATION_END, periods=78)
        for m in (cdnow_bgnbd, cdnow_paretonbd)
    ]
    for curve in curves:
        assert curve.t.shape == curve.actual.shape == curve.expected.shape == (78,)
        assert curve.calibration_end == 39.0
        assert curve.actual[38] == 2_457  # all calibration repeat purchases by the end of week 39
        assert curve.actual[-1] == 2_457 + 1_882
        assert np.all(np.diff(curve.expected) > 0)
        assert curve.actual_incremental.sum() == curve.actual[-1]
        # At week 39 the expectation is sum_i E[X(T_i)]: within 3% of the calibration total for both models.
        assert curve.expected[38] == pytest.approx(curve.actual[38], rel=0.03)
    bg_error = curves[0].expected[-1] / curves[0].actual[-1] - 1
    pareto_error = curves[1].expected[-1] / curves[1].actual[-1] - 1
    assert -0.05 < bg_error < -0.03
    assert -0.03 < pareto_error < -0.01


def test_units_must_match(cdnow_summary: CalibrationSummary, cdnow_bgnbd: BGNBDParams) -> None:
    in_days = BGNBDParams(0.243, 4.414 / 7, 0.793, 2.426, 0.0, 1.0, TimeUnit.DAYS)
    with pytest.raises(CLVInputError):
        conditional_expectations(in_days, cdnow_summary)
    # A model re-expressed in days predicts the same numbers when fed days.
    s = cdnow_summary
    weeks = cdnow_bgnbd.expected_purchases(39, s.x[:50], s.t_x[:50], s.T[:50])
    exact_days = BGNBDParams(
        cdnow_bgnbd.r, cdnow_bgnbd.alpha * 7, cdnow_bgnbd.a, cdnow_bgnbd.b, 0.0, 1.0, TimeUnit.DAYS
    )
    days = exact_days.expected_purchases(273, s.x[:50], s.t_x[:50] * 7, s.T[:50] * 7)
    np.testing.assert_allclose(days, weeks, rtol=1e-12)


def test_discounted_clv(
    cdnow_summary: CalibrationSummary, cdnow_bgnbd: BGNBDParams, cdnow_mbgnbd: MBGNBDParams
) -> None:
    s = cdnow_summary
    spend_model = fit_gamma_gamma(s.x, s.mean_spend)
    spend = conditional_expected_spend(spend_model, s.x, s.mean_spend)
    for model in (cdnow_bgnbd, cdnow_mbgnbd):
        undiscounted = discounted_clv(model, s.x, s.t_x, s.T, spend, horizon=52, discount_rate=0.0)
        np.testing.assert_allclose(undiscounted, spend * model.expected_purchases(52, s.x, s.t_x, s.T), rtol=1e-10)
        weekly = per_period_rate(0.15, 52)
        assert (1 + weekly) ** 52 == pytest.approx(1.15)
        clv = discounted_clv(model, s.x, s.t_x, s.T, spend, horizon=52, discount_rate=weekly)
        assert np.all(clv <= undiscounted + 1e-12)
        assert np.all(clv > undiscounted / 1.15 - 1e-12)  # nothing is discounted by more than a year
        # Four-week periods approximate the same continuous-time value closely.
        monthly = discounted_clv(
            model, s.x, s.t_x, s.T, spend, horizon=13, discount_rate=per_period_rate(0.15, 13), period=4.0
        )
        np.testing.assert_allclose(monthly.sum(), clv.sum(), rtol=5e-3)
    with pytest.raises(CLVInputError):
        discounted_clv(cdnow_bgnbd, 1, 1.0, 2.0, 10.0, horizon=0, discount_rate=0.01)
