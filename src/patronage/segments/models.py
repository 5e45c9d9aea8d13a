"""Segment definitions and their current members."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.models import Base, WorkspaceScoped
from patronage.kit.types import BigId, JSONType, UTCDateTime


class Segment(WorkspaceScoped):
    """``dynamic``: members are the customers matching ``definition`` (a condition tree, see
    conditions.py), kept current by jobs. ``static``: members are set by CSV upload or the API."""

    __tablename__ = "segments"
    __table_args__ = (Index("uq_segments_ws_name", "workspace_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    kind: Mapped[str] = mapped_column(String(10), default="dynamic")
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    member_count: Mapped[int] = mapped_column(default=0)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SegmentMembership(Base):
    __tablename__ = "segment_memberships"
    __table_args__ = (Index("ix_segment_memberships_ws_customer", "workspace_id", "customer_id"),)

    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[int] = mapped_column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
