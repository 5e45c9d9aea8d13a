"""Forecasting a KPI's periodic series with Holt's linear trend method (double exponential smoothing).

level_t = alpha y_t + (1 - alpha)(level_{t-1} + trend_{t-1});
trend_t = beta (level_t - level_{t-1}) + (1 - beta) trend_{t-1};
forecast_{T+h} = level_T + h trend_T.

Initialisation: level_0 = y_0, trend_0 = y_1 - y_0. ``alpha`` and ``beta`` are chosen on a 0.05 grid in
[0.05, 0.95] minimising the sum of squared one-step-ahead errors (Hyndman & Athanasopoulos, *Forecasting:
Principles and Practice*, 3rd ed., section 8.2). Fewer than 3 observations give no forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_POINTS = 3
_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


@dataclass(frozen=True)
class HoltFit:
    alpha: float
    beta: float
    level: float
    trend: float
    sse: float

    def forecast(self, steps: int) -> float:
        return self.level + steps * self.trend


def _run(y: np.ndarray, alpha: float, beta: float) -> tuple[float, float, float]:
    level, trend = float(y[0]), float(y[1] - y[0])
    sse = 0.0
    for value in y[1:]:
        error = float(value) - (level + trend)
        sse += error * error
        new_level = alpha * float(value) + (1 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1 - beta) * trend
        level = new_level
    return level, trend, sse


def fit_holt(values: Sequence[float]) -> HoltFit | None:
    y = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if y.size < MIN_POINTS:
        return None
    best: HoltFit | None = None
    for alpha in _GRID:
        for beta in _GRID:
            level, trend, sse = _run(y, float(alpha), float(beta))
            if best is None or sse < best.sse - 1e-12:
                best = HoltFit(float(alpha), float(beta), level, trend, sse)
    return best
