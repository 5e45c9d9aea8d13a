"""CDNOW fixtures shared by the CLV tests: the 2,357-customer sample, 39 + 39 weeks (FHL 2005)."""

from __future__ import annotations

import pytest

from patronage.analytics.clv import (
    BGNBDParams,
    CalibrationSummary,
    DailyPurchases,
    MBGNBDParams,
    ParetoNBDParams,
    RFMStats,
    daily_purchases,
    fit_bgnbd,
    fit_mbgnbd,
    fit_paretonbd,
    summarize,
)
from patronage.analytics.clv.datasets import (
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_END,
    Transactions,
    load_cdnow,
)


@pytest.fixture(scope="session")
def cdnow() -> Transactions:
    return load_cdnow("sample")


@pytest.fixture(scope="session")
def cdnow_daily(cdnow: Transactions) -> DailyPurchases:
    return daily_purchases(cdnow.customer_id, cdnow.date, cdnow.amount)


@pytest.fixture(scope="session")
def cdnow_summary(cdnow_daily: DailyPurchases) -> CalibrationSummary:
    return summarize(cdnow_daily, calibration_end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END)


@pytest.fixture(scope="session")
def cdnow_stats(cdnow_summary: CalibrationSummary) -> RFMStats:
    return cdnow_summary.rfm()


@pytest.fixture(scope="session")
def cdnow_bgnbd(cdnow_stats: RFMStats) -> BGNBDParams:
    return fit_bgnbd(cdnow_stats)


@pytest.fixture(scope="session")
def cdnow_mbgnbd(cdnow_stats: RFMStats) -> MBGNBDParams:
    return fit_mbgnbd(cdnow_stats)


@pytest.fixture(scope="session")
def cdnow_paretonbd(cdnow_stats: RFMStats) -> ParetoNBDParams:
    return fit_paretonbd(cdnow_stats)
