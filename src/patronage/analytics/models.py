"""Analytics rows kept in the operational database: precomputed results, refresh runs, KPI goals and the
per-customer scores (RFM, CLV) written back to the profile."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.models import Base, WorkspaceScoped
from patronage.kit.types import BigId, JSONType, UTCDateTime


class AnalyticsResult(WorkspaceScoped):
    """One precomputed result (a KPI series, a cohort matrix, the RFM grid), read by dashboards as is."""

    __tablename__ = "analytics_results"
    __table_args__ = (Index("uq_analytics_results_ws_key", "workspace_id", "key", unique=True),)

    key: Mapped[str] = mapped_column(String(200))  # e.g. "kpi/month/channel/aov", "cohorts/week"
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    as_of: Mapped[date | None]


class AnalyticsRefresh(WorkspaceScoped):
    """A refresh run: extract + compute + store. The latest row is the workspace's refresh status."""

    __tablename__ = "analytics_refreshes"

    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|succeeded|failed
    full: Mapped[bool] = mapped_column(default=False)
    job_id: Mapped[int | None] = mapped_column(BigId)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows_extracted: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class KpiGoal(WorkspaceScoped):
    """A target on a KPI with a deadline, e.g. repeat purchase rate >= 35% by June."""

    __tablename__ = "kpi_goals"

    name: Mapped[str] = mapped_column(String(200))
    kpi: Mapped[str] = mapped_column(String(60))
    period: Mapped[str] = mapped_column(String(10), default="month")
    breakdown: Mapped[str | None] = mapped_column(String(20))
    group: Mapped[str | None] = mapped_column(String(200))
    comparator: Mapped[str] = mapped_column(String(3), default="gte")  # gte | lte
    target: Mapped[float] = mapped_column(Float)
    deadline: Mapped[date]
    baseline: Mapped[float | None] = mapped_column(Float)
    baseline_label: Mapped[str | None] = mapped_column(String(20))


class CustomerScores(Base):
    """Per-customer analytics written back to the profile by the RFM/CLV refresh (one row per customer)."""

    __tablename__ = "customer_scores"
    __table_args__ = (Index("ix_customer_scores_ws_segment", "workspace_id", "rfm_segment"),)

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    # Indexed by ix_customer_scores_ws_segment, which starts with it.
    workspace_id: Mapped[int] = mapped_column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"))
    rfm_r: Mapped[int | None]
    rfm_f: Mapped[int | None]
    rfm_m: Mapped[int | None]
    rfm_segment: Mapped[str | None] = mapped_column(String(40))
    recency_days: Mapped[int | None]
    frequency: Mapped[int | None]
    monetary: Mapped[float | None] = mapped_column(Float)
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_purchases_90d: Mapped[float | None] = mapped_column(Float)
    expected_clv: Mapped[float | None] = mapped_column(Float)
    churn_risk: Mapped[float | None] = mapped_column(Float)  # the churn model (later) writes this
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
