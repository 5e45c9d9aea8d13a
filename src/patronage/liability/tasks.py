"""Liability jobs: the snapshot of the liability report, every half hour and on request."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, periodic
from patronage.liability import service

SNAPSHOT_CRON = "*/30 * * * *"


@periodic(service.SNAPSHOT_TASK, SNAPSHOT_CRON, max_attempts=3, lease_seconds=1800)
def snapshot(session: Session, ctx: JobContext) -> None:
    """Read the ledger in a read-only transaction of its own: the job's session takes SQLite's write lock
    at its first statement, and that must not be held while every open lot is read."""
    assert ctx.workspace_id is not None
    db = ctx.database(session)
    with db.unit_of_work(read_only=True) as reader:
        service.take_snapshot(reader, session, ctx.workspace_id)
