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
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    CTE,
    BindParameter,
    String,
    Update,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from patronage.kit.jobs.models import JOBS_TABLE, Job, JobStatus, status_is
from patronage.kit.types import UTCDateTime


class ClaimedJob(NamedTuple):
    """A job as its claim left it (read from the claim's RETURNING: no ORM instance to build)."""

    id: int
    task: str
    workspace_id: int | None
    payload: dict[str, Any]
    status: str
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    locked_by: str | None
    lease_expires_at: datetime | None


def claim_due(
    session: Session,
    *,
    worker: str,
    limit: int,
    now: datetime,
    default_lease: int,
    task_leases: Mapping[str, int],
    postgres: bool,
) -> tuple[list[ClaimedJob], int]:
    """Claim up to ``limit`` due jobs for ``worker``: (the claimed jobs in claiming order, how many
    lost jobs were buried instead). Burials use up part of ``limit``, so a caller that wants a full
    batch asks again when some were buried.

    ``task_leases`` holds the lease, in seconds, of the tasks that declare their own.
    """
    leased = tuple(sorted(task_leases))
    params: dict[str, Any] = {
        "worker": worker, "limit": limit, "now": now, "lease_end": now + timedelta(seconds=default_lease),
        **{f"lease_end_{i}": now + timedelta(seconds=task_leases[name]) for i, name in enumerate(leased)},
    }
    returned = [ClaimedJob(*row) for row in session.execute(_claim_statement(postgres, leased), params)]
    jobs = [job for job in returned if job.status == JobStatus.RUNNING]
    jobs.sort(key=lambda job: (job.priority, job.run_at, job.id))  # RETURNING keeps no order
    return jobs, len(returned) - len(jobs)


@lru_cache(maxsize=16)
def _claim_statement(postgres: bool, leased_tasks: tuple[str, ...]) -> Update:
    """The claim, built once per dialect and set of tasks with leases of their own (a worker claims many
    times a second: building and compiling it anew cost more than running it). Its values are bound:
    ``worker``, ``limit``, ``now``, ``lease_end`` and ``lease_end_<i>`` for the i-th of ``leased_tasks``."""
    now = _at("now")
    waiting = _pick("waiting", postgres, status_is(JobStatus.QUEUED), Job.run_at <= now)
    expired = _pick("expired", postgres, status_is(JobStatus.RUNNING), Job.lease_expires_at < now)
    both = union_all(
        select(waiting.c.id, waiting.c.priority, waiting.c.run_at),
        select(expired.c.id, expired.c.priority, expired.c.run_at),
    ).subquery("due")
    picked = select(both.c.id).order_by(both.c.priority, both.c.run_at, both.c.id).limit(bindparam("limit"))

    jobs = JOBS_TABLE.c
    lost = (jobs.status == JobStatus.RUNNING) & (jobs.attempts >= jobs.max_attempts)
    lease_end: ColumnElement[datetime] = _at("lease_end")
    if leased_tasks:
        lease_end = case(
            {name: _at(f"lease_end_{i}") for i, name in enumerate(leased_tasks)}, value=jobs.task, else_=lease_end
        )
    burial_note = (
        literal("lease expired on attempt ") + cast(jobs.attempts, String) + literal(" (worker ")
        + func.coalesce(jobs.locked_by, "") + literal(" lost)")
    )
    # Every SET expression reads the row as it was before this UPDATE (standard SQL, both databases).
    return (
        JOBS_TABLE.update()
        .where(jobs.id.in_(picked))
        .values(
            status=case((lost, JobStatus.DEAD), else_=JobStatus.RUNNING),
            attempts=case((lost, jobs.attempts), else_=jobs.attempts + 1),
            locked_by=case((lost, jobs.locked_by), else_=bindparam("worker")),
            lease_expires_at=case((lost, jobs.lease_expires_at), else_=lease_end),
            finished_at=case((lost, now), else_=jobs.finished_at),
            last_error=case((lost, burial_note), else_=jobs.last_error),
        )
        .returning(*(jobs[name] for name in ClaimedJob._fields))
    )


def _at(name: str) -> BindParameter[datetime]:
    return bindparam(name, type_=UTCDateTime())


def _pick(name: str, postgres: bool, *where: ColumnElement[bool]) -> CTE:
    """Up to ``limit`` jobs matching ``where`` in claim order, walked along their partial index; on
    PostgreSQL locked as they are found, skipping rows another worker holds. A CTE holding FOR UPDATE
    is evaluated exactly once, so the LIMIT cannot be overrun by a re-scanned sub-select."""
    stmt = select(Job.id, Job.priority, Job.run_at).where(*where).order_by(Job.priority, Job.run_at, Job.id)
    stmt = stmt.limit(bindparam("limit"))
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt.cte(name)
