"""The audit trail: one append-only row per state change a person, key or job makes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.models import Base, IdMixin
from patronage.kit.types import BigId, JSONType, UTCDateTime


class AuditEntry(IdMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "workspace_id", "subject_type", "subject_id"),)

    # Indexed by ix_audit_log_subject, which starts with it.
    workspace_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(120))  # "user:3", "api_key:7", "member:12", "system"
    action: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def audit(
    session: Session,
    *,
    workspace_id: int | None,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: object,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            workspace_id=workspace_id,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id),
            data=data or {},
            at=utcnow(),
        )
    )
