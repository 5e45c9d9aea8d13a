"""Retention KPIs: one documented formula each (docs/analytics.md), from the additive measures that
sql.kpi_series computes per period and group.

Notation for a period P = [s, e) of a group of customers (a breakdown value, or everyone):
``S`` = customers active at s, ``E`` = customers active at e, ``N`` = customers whose first order is in P;
*active at t* = placed an order in the ``active_window_days`` (default 365) days before t.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Series = npt.NDArray[np.float64]
MESSAGING_COST_PER_PERIOD = 0.0  # until engagement records message costs
DAYS_PER_YEAR = 365.25


class Kpi(StrEnum):
    CRR = "customer_retention_rate"
    CHURN = "churn_rate"
    REPEAT_PURCHASE_RATE = "repeat_purchase_rate"
    PURCHASE_FREQUENCY = "purchase_frequency"
    AOV = "average_order_value"
    HISTORICAL_CLV = "historical_clv"
    REVENUE_CHURN = "revenue_churn"
    GROWTH = "customer_growth_rate"
    RETENTION_COST = "retention_cost"
    ACTIVE = "active_customers"
    NEW = "new_customers"
    ORDERS = "orders"
    REVENUE = "revenue"
    NPS = "nps"
    CSAT = "csat"


NOT_AVAILABLE = {Kpi.NPS: "not available until feedback", Kpi.CSAT: "not available until feedback"}


@dataclass(frozen=True)
class KpiInfo:
    kpi: Kpi
    formula: str
    unit: str  # ratio | count | money | number
    higher_is_better: bool


CATALOG: dict[Kpi, KpiInfo] = {
    i.kpi: i
    for i in (
        KpiInfo(Kpi.CRR, "(E - N) / S", "ratio", True),
        KpiInfo(Kpi.CHURN, "1 - CRR", "ratio", False),
        KpiInfo(
            Kpi.REPEAT_PURCHASE_RATE, "customers with >= 2 orders by e / customers with >= 1 order by e", "ratio", True
        ),
        KpiInfo(Kpi.PURCHASE_FREQUENCY, "orders in P / customers with an order in P", "number", True),
        KpiInfo(Kpi.AOV, "revenue in P / orders in P", "money", True),
        KpiInfo(
            Kpi.HISTORICAL_CLV,
            "(revenue in the year to e / customers with an order in the 365 days to e)"
            " x mean(last order by e - first order) in years",
            "money",
            True,
        ),
        KpiInfo(
            Kpi.REVENUE_CHURN, "1 - revenue in P from customers who ordered in P-1 / revenue in P-1", "ratio", False
        ),
        KpiInfo(Kpi.GROWTH, "(E - S) / S", "ratio", True),
        KpiInfo(Kpi.RETENTION_COST, "(rewards redeemed value in P + messaging cost in P) / (E - N)", "money", False),
        KpiInfo(Kpi.ACTIVE, "customers with an order in P", "count", True),
        KpiInfo(Kpi.NEW, "N: customers whose first order is in P", "count", True),
        KpiInfo(Kpi.ORDERS, "orders in P (not cancelled)", "count", True),
        KpiInfo(Kpi.REVENUE, "sum of order total - refunded, orders in P", "money", True),
        KpiInfo(Kpi.NPS, "not available until feedback", "number", True),
        KpiInfo(Kpi.CSAT, "not available until feedback", "number", True),
    )
}


def _ratio(numerator: Series, denominator: Series) -> Series:
    out = np.full(numerator.shape, np.nan)
    ok = denominator != 0
    np.divide(numerator, denominator, out=out, where=ok)
    return out


def derive(m: Mapping[str, npt.ArrayLike]) -> dict[Kpi, Series]:
    """Every KPI series from the raw measures of one group (arrays aligned on period)."""
    a = {k: np.asarray(v, dtype=np.float64) for k, v in m.items()}
    s, e, n = a["active_start"], a["active_end"], a["new_customers"]
    crr = _ratio(e - n, s)
    lifespan_years = _ratio(a["lifespan_days_to_date"], a["customers_to_date"]) / DAYS_PER_YEAR
    yearly_revenue_per_customer = _ratio(a["revenue_year"], a["year_active_end"])
    formulas: dict[Kpi, Callable[[], Series]] = {
        Kpi.CRR: lambda: crr,
        Kpi.CHURN: lambda: 1.0 - crr,
        Kpi.REPEAT_PURCHASE_RATE: lambda: _ratio(a["repeaters_to_date"], a["customers_to_date"]),
        Kpi.PURCHASE_FREQUENCY: lambda: _ratio(a["orders"], a["active"]),
        Kpi.AOV: lambda: _ratio(a["revenue"], a["orders"]),
        Kpi.HISTORICAL_CLV: lambda: yearly_revenue_per_customer * lifespan_years,
        Kpi.REVENUE_CHURN: lambda: 1.0 - _ratio(a["retained_revenue"], a["revenue_prev"]),
        Kpi.GROWTH: lambda: _ratio(e - s, s),
        Kpi.RETENTION_COST: lambda: _ratio(a["redeemed"] + MESSAGING_COST_PER_PERIOD, e - n),
        Kpi.ACTIVE: lambda: a["active"],
        Kpi.NEW: lambda: n,
        Kpi.ORDERS: lambda: a["orders"],
        Kpi.REVENUE: lambda: a["revenue"],
        Kpi.NPS: lambda: np.full(s.shape, np.nan),
        Kpi.CSAT: lambda: np.full(s.shape, np.nan),
    }
    return {kpi: fn() for kpi, fn in formulas.items()}


def to_json_values(series: Series) -> list[float | None]:
    """NaN (undefined: a zero denominator, or not available) becomes null."""
    rounded = np.round(series, 10)
    return [v if math.isfinite(v) else None for v in rounded.tolist()]
