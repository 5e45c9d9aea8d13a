"""Earning rule sets (versioned JSON documents), limit counters and backtests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, UTCDateTime


class VersionStatus:
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"  # was published, replaced by a newer version


class RuleSet(WorkspaceScoped):
    """A named set of earning rules. Every published rule set of a workspace is live at once."""

    __tablename__ = "earning_rule_sets"
    __table_args__ = (Index("uq_earning_rule_sets_ws_name", "workspace_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    published_version: Mapped[int | None]  # the live version's number; None: not live
    archived: Mapped[bool] = mapped_column(default=False)


class RuleSetVersion(WorkspaceScoped):
    """One version of a rule set. Drafts may be edited; a published version never changes again."""

    __tablename__ = "earning_rule_set_versions"
    __table_args__ = (Index("uq_earning_rule_set_versions_set_version", "rule_set_id", "version", unique=True),)

    rule_set_id: Mapped[int] = mapped_column(BigId, ForeignKey("earning_rule_sets.id", ondelete="CASCADE"))
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.DRAFT)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    digest: Mapped[str] = mapped_column(String(64), default="")  # sha256 of the canonical document
    notes: Mapped[str] = mapped_column(String(2000), default="")
    created_by: Mapped[str] = mapped_column(String(120))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(120))


class RuleUsage(WorkspaceScoped):
    """Points and times a rule awarded per customer and period (limits), or in total (budget: customer 0).

    Counters are updated relatively under the customer's account lock (budget rows: their own row lock).
    """

    __tablename__ = "earning_rule_usage"
    __table_args__ = (
        Index("uq_earning_rule_usage_key", "workspace_id", "rule_uid", "customer_id", "period_key", unique=True),
    )

    rule_uid: Mapped[str] = mapped_column(String(120))
    customer_id: Mapped[int] = mapped_column(BigId)  # 0 for a rule's total budget
    period_key: Mapped[str] = mapped_column(String(20))
    points: Mapped[int] = mapped_column(default=0)
    times: Mapped[int] = mapped_column(default=0)


class BacktestStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Backtest(WorkspaceScoped):
    """A draft version run over past orders; progress and the report are stored here."""

    __tablename__ = "earning_backtests"

    rule_set_id: Mapped[int] = mapped_column(BigId, ForeignKey("earning_rule_sets.id", ondelete="CASCADE"))
    version: Mapped[int]
    date_from: Mapped[datetime] = mapped_column(UTCDateTime)
    date_to: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=BacktestStatus.QUEUED)
    processed: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[int] = mapped_column(BigId, default=0)  # last order id processed (resumable)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # running totals between chunks
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
