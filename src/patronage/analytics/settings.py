"""Analytics knobs, from ``PATRONAGE_ANALYTICS_*`` environment variables (12-factor, like config.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnalyticsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATRONAGE_ANALYTICS_", env_file=".env", extra="ignore")

    # One DuckDB file per workspace lives here; "" keeps stores in memory (tests).
    dir: str = "var/analytics"
    # A customer is *active* at an instant when they ordered within this many days before it.
    active_window_days: int = Field(default=365, ge=31, le=3650)
    # Funnel: "loyal" needs this many orders; "advocate" also one of these event types.
    loyal_min_orders: int = Field(default=4, ge=3)
    advocacy_event_types: list[str] = ["referral_sent", "referral_converted", "review_posted"]
    # Extract: rows per read transaction, and how far back changed rows are re-read (covers
    # transactions that committed after a later-started one: ids and timestamps are not commit order).
    extract_chunk_rows: int = Field(default=100_000, ge=1000)
    extract_overlap_minutes: int = Field(default=10, ge=0)
    # Which periods get precomputed KPI series, lifecycle compositions and cohort matrices.
    kpi_periods: list[Literal["day", "week", "month"]] = ["day", "week", "month"]
    cohort_periods: list[Literal["week", "month"]] = ["week", "month"]
    # Predicted CLV: months ahead and the yearly discount rate.
    clv_horizon_months: int = Field(default=12, ge=1, le=120)
    clv_discount_rate: float = Field(default=0.10, ge=0.0, le=1.0)
    # Refresh every workspace on this cron (its time zone); segments are re-evaluated hourly.
    refresh_cron: str = "30 2 * * *"

    def store_path(self, workspace_id: int) -> Path | None:
        if not self.dir:
            return None
        return Path(self.dir) / f"workspace_{workspace_id}.duckdb"


@lru_cache(maxsize=1)
def get_analytics_settings() -> AnalyticsSettings:
    return AnalyticsSettings()
