"""Operators' view of the workspace's jobs: list (e.g. the dead letters) and retry a dead job."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.schemas import JobOut
from patronage.kit.pagination import Page, paginate_by_id
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission


class JobNotDead(Conflict):
    code = "job_not_dead"
    title = "Only dead jobs can be retried"


class JobAlreadyQueued(Conflict):
    code = "job_already_queued"
    title = "An equivalent job is already waiting"


router = APIRouter(route_class=UnitOfWorkRoute, tags=["jobs"])
Operator = Annotated[Principal, Depends(require(Permission.JOBS_MANAGE))]
StatusFilter = Literal["queued", "running", "succeeded", "superseded", "dead"]


@router.get("/jobs", response_model=Page[JobOut])
def list_jobs(
    principal: Operator,
    session: Annotated[Session, Depends(request_session)],
    status: StatusFilter | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[JobOut]:
    stmt = select(Job).where(Job.workspace_id == principal.workspace_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    rows, next_cursor = paginate_by_id(session, stmt, Job.id, cursor=cursor, limit=limit)
    return Page[JobOut](items=[JobOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/jobs/{job_id}/retry", response_model=JobOut)
def retry_job(
    job_id: int, principal: Operator, session: Annotated[Session, Depends(request_session)]
) -> JobOut:
    stmt = select(Job).where(Job.id == job_id, Job.workspace_id == principal.workspace_id).with_for_update()
    job = session.scalars(stmt).one_or_none()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job.status != JobStatus.DEAD:
        raise JobNotDead(f"only dead jobs can be retried; this one is {job.status}")
    try:
        with session.begin_nested():
            job.status, job.attempts, job.run_at, job.finished_at = JobStatus.QUEUED, 0, utcnow(), None
            job.locked_by, job.lease_expires_at = None, None
            session.flush()
    except IntegrityError as exc:
        # Its unique key is taken by a waiting job: that one will do the work (see JobStatus.SUPERSEDED).
        raise JobAlreadyQueued(f"a job with unique key {job.unique_key!r} is already waiting") from exc
    return JobOut.model_validate(job)
