"""Predictive customer-lifetime-value models (pure NumPy/SciPy, no database).

Non-contractual purchasing: BG/NBD (:mod:`.bgnbd`), MBG/NBD (:mod:`.mbgnbd`), Pareto/NBD (:mod:`.paretonbd`);
spend per transaction: Gamma-Gamma (:mod:`.gammagamma`); contractual renewals: shifted-beta-geometric
(:mod:`.sbg`). Data preparation lives in :mod:`.transactions` and :mod:`.data`, validation in
:mod:`.evaluation`, CLV in :mod:`.value`. See ``docs/analytics-clv.md``.

Every time (``t_x``, ``T``, horizons) is expressed in the :class:`TimeUnit` carried by the data and the
fitted parameters.
"""

from patronage.analytics.clv.bgnbd import BGNBDParams, fit_bgnbd
from patronage.analytics.clv.data import RFMStats, TimeUnit
from patronage.analytics.clv.errors import CLVFitError, CLVInputError
from patronage.analytics.clv.evaluation import (
    ConditionalExpectations,
    TrackingCurve,
    conditional_expectations,
    tracking_curve,
)
from patronage.analytics.clv.gammagamma import GammaGammaParams, conditional_expected_spend, fit_gamma_gamma
from patronage.analytics.clv.mbgnbd import MBGNBDParams, fit_mbgnbd
from patronage.analytics.clv.paretonbd import ParetoNBDParams, fit_paretonbd
from patronage.analytics.clv.sbg import SBGParams, SurvivalCounts, fit_sbg
from patronage.analytics.clv.transactions import (
    CalibrationSummary,
    DailyPurchases,
    daily_purchases,
    summarize,
    summarize_transactions,
)
from patronage.analytics.clv.value import PurchaseModel, discounted_clv, per_period_rate

__all__ = [
    "BGNBDParams",
    "CLVFitError",
    "CLVInputError",
    "CalibrationSummary",
    "ConditionalExpectations",
    "DailyPurchases",
    "GammaGammaParams",
    "MBGNBDParams",
    "ParetoNBDParams",
    "PurchaseModel",
    "RFMStats",
    "SBGParams",
    "SurvivalCounts",
    "TimeUnit",
    "TrackingCurve",
    "conditional_expectations",
    "conditional_expected_spend",
    "daily_purchases",
    "discounted_clv",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_mbgnbd",
    "fit_paretonbd",
    "fit_sbg",
    "per_period_rate",
    "summarize",
    "summarize_transactions",
    "tracking_curve",
]
