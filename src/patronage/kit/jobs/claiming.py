"""Claiming due jobs: one ``UPDATE … RETURNING`` takes a whole batch under a lease.

The statement picks the due jobs (queued and due, or running with an expired lease, each kind along its
own partial index) in priority, due time, id order, skipping rows other workers hold locked on PostgreSQL
(``FOR UPDATE SKIP LOCKED``; SQLite has one writer, so its sub-select needs no lock), and in the same pass
leases them to the worker and counts the attempt. A picked job whose lease expired on its last allowed
attempt is buried instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import CTE, String, case, cast, func, literal, select, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from patronage.kit.jobs.models import Job, JobStatus, status_is
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
    waiting = _pick("waiting", limit, postgres, status_is(JobStatus.QUEUED), Job.run_at <= now)
    expired = _pick("expired", limit, postgres, status_is(JobStatus.RUNNING), Job.lease_expires_at < now)
    both = union_all(
        select(waiting.c.id, waiting.c.priority, waiting.c.run_at),
        select(expired.c.id, expired.c.priority, expired.c.run_at),
    ).subquery("due")
    picked = select(both.c.id).order_by(both.c.priority, both.c.run_at, both.c.id).limit(limit)

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
        .where(Job.id.in_(picked))
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


def _pick(name: str, limit: int, postgres: bool, *where: ColumnElement[bool]) -> CTE:
    """Up to ``limit`` jobs matching ``where`` in claim order, walked along their partial index; on
    PostgreSQL locked as they are found, skipping rows another worker holds. A CTE holding FOR UPDATE
    is evaluated exactly once, so the LIMIT cannot be overrun by a re-scanned sub-select."""
    stmt = select(Job.id, Job.priority, Job.run_at).where(*where).order_by(Job.priority, Job.run_at, Job.id)
    stmt = stmt.limit(limit)
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt.cte(name)
