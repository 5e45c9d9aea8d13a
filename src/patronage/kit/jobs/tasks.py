"""The queue's own housekeeping."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from patronage.config import get_settings
from patronage.kit.clock import utcnow
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.registry import JobContext, periodic


@periodic("jobs.prune_finished", "17 3 * * *", per_workspace=False)
def prune_finished_jobs(session: Session, ctx: JobContext) -> None:
    """Delete succeeded jobs past the retention window. Dead jobs stay until an operator acts."""
    cutoff = utcnow() - timedelta(days=get_settings().succeeded_job_retention_days)
    session.execute(
        delete(Job).where(
            Job.status.in_([JobStatus.SUCCEEDED, JobStatus.SUPERSEDED]), Job.finished_at < cutoff
        )
    )
