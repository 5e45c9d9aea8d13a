"""Claiming due jobs: one ``UPDATE … RETURNING`` takes a whole batch under a lease.

The statement picks the due jobs (queued and due, or running with an expired lease) in priority, due
time, id order, skipping rows other workers hold locked on PostgreSQL (``FOR UPDATE SKIP LOCKED``; SQLite
has one writer, so its sub-select needs no lock), and in the same pass leases them to the worker and
counts the attempt. A picked job whose lease expired on its last allowed attempt is buried instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import String, case, cast, func, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.types import UTCDateTime


def claim_due(
    session: Session,
    *,
    worker: str,
    limit: int,
    now: datetime,
    default_lease: int,
    task_leases: Mapping[str, int],
    postgres: bool,
) -> tuple[list[Job], int]:
    """Claim up to ``limit`` due jobs for ``worker``: (the claimed jobs in claiming order, how many
    lost jobs were buried instead). Burials use up part of ``limit``, so a caller that wants a full
    batch asks again when some were buried.

    ``task_leases`` holds the lease, in seconds, of the tasks that declare their own.
    """
    due = or_(
        (Job.status == JobStatus.QUEUED) & (Job.run_at <= now),
        (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now),
    )
    picked = select(Job.id).where(due).order_by(Job.priority, Job.run_at, Job.id).limit(limit)
    if postgres:
        # A CTE holding FOR UPDATE is evaluated exactly once, so the LIMIT cannot be overrun by a
        # re-scanned sub-select.
        picked = picked.with_for_update(skip_locked=True)
    ids = picked.cte("picked")

    lost = (Job.status == JobStatus.RUNNING) & (Job.attempts >= Job.max_attempts)
    lease_end: ColumnElement[datetime] = literal(now + timedelta(seconds=default_lease), UTCDateTime())
    if task_leases:
        lease_end = case(
            {name: literal(now + timedelta(seconds=s), UTCDateTime()) for name, s in sorted(task_leases.items())},
            value=Job.task,
            else_=lease_end,
        )
    burial_note = (
        literal("lease expired on attempt ") + cast(Job.attempts, String) + literal(" (worker ")
        + func.coalesce(Job.locked_by, "") + literal(" lost)")
    )
    # Every SET expression reads the row as it was before this UPDATE (standard SQL, both databases).
    stmt = (
        update(Job)
        .where(Job.id.in_(select(ids.c.id)))
        .values(
            status=case((lost, JobStatus.DEAD), else_=JobStatus.RUNNING),
            attempts=case((lost, Job.attempts), else_=Job.attempts + 1),
            locked_by=case((lost, Job.locked_by), else_=worker),
            lease_expires_at=case((lost, Job.lease_expires_at), else_=lease_end),
            finished_at=case((lost, literal(now, UTCDateTime())), else_=Job.finished_at),
            last_error=case((lost, burial_note), else_=Job.last_error),
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    returned = list(session.scalars(stmt))
    jobs = [job for job in returned if job.status == JobStatus.RUNNING]
    jobs.sort(key=lambda job: (job.priority, job.run_at, job.id))  # RETURNING keeps no order
    return jobs, len(returned) - len(jobs)
