"""Rows of the job queue: jobs, periodic schedules and the domain-event log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, ForeignKey, Index, String, Table, Text, literal_column, text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.models import Base, IdMixin
from patronage.kit.types import BigId, JSONType, UTCDateTime


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    # A retry found a newer queued job with the same unique key; that one does the work.
    SUPERSEDED = "superseded"
    DEAD = "dead"


# The partial unique index's predicate, shared with ``enqueue``'s ON CONFLICT clause: PostgreSQL infers
# the index only from a literal predicate (a bound ``status = $1`` fails once the statement is prepared).
QUEUED_UNIQUE_KEY_PREDICATE = "status = 'queued' AND unique_key IS NOT NULL"


def _partial(name: str, *columns: str, status: JobStatus) -> Index:
    """An index over the jobs in one ``status`` only. Its predicate is literal: PostgreSQL uses a partial
    index only for a query whose predicate implies it, and a bound ``status = $1`` implies nothing once
    the statement is prepared (queries match it with ``status_is``)."""
    predicate = text(f"status = '{status.value}'")
    return Index(name, *columns, sqlite_where=predicate, postgresql_where=predicate)


class Job(IdMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # The claim's two indexes. Each holds only the row versions written in its status (a job enters
        # ix_jobs_due when enqueued, ix_jobs_leases when claimed), so a claim no longer reads through the
        # versions of every finished job, as it did along the former (status, run_at).
        _partial("ix_jobs_due", "priority", "run_at", "id", status=JobStatus.QUEUED),
        _partial("ix_jobs_leases", "lease_expires_at", status=JobStatus.RUNNING),
        # Dead jobs wait for an operator (doctor, the jobs list): found without walking finished ones.
        _partial("ix_jobs_dead", "finished_at", status=JobStatus.DEAD),
        Index(
            # At most one *waiting* job per key. A running one does not block the next: it may have
            # read its inputs before the change that enqueued the new one.
            "uq_jobs_queued_unique_key",
            "unique_key",
            unique=True,
            sqlite_where=text(QUEUED_UNIQUE_KEY_PREDICATE),
            postgresql_where=text(QUEUED_UNIQUE_KEY_PREDICATE),
        ),
    )

    workspace_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    task: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    priority: Mapped[int] = mapped_column(default=100)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=10)
    unique_key: Mapped[str | None] = mapped_column(String(300))
    locked_by: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


# The table itself, for the Core statements of the hot paths (claim, enqueue, success): no ORM machinery.
JOBS_TABLE = cast(Table, Job.__table__)


class JobSchedule(IdMixin, Base):
    """A periodic task's next firing, per workspace (in its time zone) or global (UTC)."""

    __tablename__ = "job_schedules"
    __table_args__ = (Index("uq_job_schedules_name_scope", "name", "scope", unique=True),)

    name: Mapped[str] = mapped_column(String(200))
    # "global" or "ws:<id>": a plain column keeps the unique index portable (NULLs never collide).
    scope: Mapped[str] = mapped_column(String(40))
    workspace_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DomainEvent(IdMixin, Base):
    """Something that happened, recorded in the transaction that made it happen."""

    __tablename__ = "domain_events"
    __table_args__ = (Index("ix_domain_events_ws_type", "workspace_id", "type", "id"),)

    uid: Mapped[str] = mapped_column(String(40), unique=True)
    workspace_id: Mapped[int] = mapped_column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def status_is(status: JobStatus) -> ColumnElement[bool]:
    """``jobs.status = '<status>'`` with the status as a literal, so the partial index of that status
    serves the query under a generic (prepared) plan as well."""
    return Job.status == literal_column(f"'{status.value}'")
