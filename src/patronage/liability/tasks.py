"""Liability jobs: the snapshot of the liability report, every half hour and on request."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session

from patronage.config import Settings
from patronage.kit.db import Database, make_database
from patronage.kit.jobs import JobContext, periodic
from patronage.liability import service

SNAPSHOT_CRON = "*/30 * * * *"


@lru_cache(maxsize=8)
def _database(url: str) -> Database:
    return make_database(Settings(database_url=url))


@periodic(service.SNAPSHOT_TASK, SNAPSHOT_CRON, max_attempts=3, lease_seconds=1800)
def snapshot(session: Session, ctx: JobContext) -> None:
    """Read the ledger in a read-only transaction of its own: the job's session takes SQLite's write lock
    at its first statement, and that must not be held while every open lot is read."""
    assert ctx.workspace_id is not None
    db = _database(session.get_bind().engine.url.render_as_string(hide_password=False))
    with db.unit_of_work(read_only=True) as reader:
        service.take_snapshot(reader, session, ctx.workspace_id)
