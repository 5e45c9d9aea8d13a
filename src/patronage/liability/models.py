"""Liability snapshots: the headline figures of the liability report, computed by a job so a page can
show them without reading the ledger (one row per workspace per local day; the newest is the current one).

A snapshot is derived data, not part of the ledger: it is rewritten while its day lasts and can be
recomputed at any time from the ledger (``liability/service.py``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import JSONType, Money, UTCDateTime


class LiabilitySnapshot(WorkspaceScoped):
    __tablename__ = "liability_snapshots"
    __table_args__ = (Index("uq_liability_snapshots_ws_day", "workspace_id", "day", unique=True),)

    day: Mapped[date] = mapped_column(Date)  # in the workspace's time zone
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(default=0)  # what computing it cost
    currency: Mapped[str] = mapped_column(String(3))
    cost_per_point: Mapped[Decimal] = mapped_column(Numeric(18, 6, asdecimal=True))
    available: Mapped[int] = mapped_column()
    pending: Mapped[int] = mapped_column()
    outstanding: Mapped[int] = mapped_column()
    value: Mapped[Decimal] = mapped_column(Money)
    net_value: Mapped[Decimal] = mapped_column(Money)
    breakage_rate: Mapped[Decimal | None] = mapped_column(Numeric(10, 4, asdecimal=True))
    breakage_method: Mapped[str] = mapped_column(String(20))
    expiring_30_days: Mapped[int] = mapped_column()
    expiring_90_days: Mapped[int] = mapped_column()
    # The whole report as GET /reports/liability returns it (age buckets, breakage study, clawback...).
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
