"""Analytics jobs: the refresh a user asks for, and the nightly refresh of every workspace."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.analytics import service
from patronage.analytics.settings import get_analytics_settings
from patronage.kit.jobs import JobContext, periodic, task
from patronage.kit.jobs.cron import validate_cron

FULL_REBUILD_WEEKDAY = 6  # Sunday: rebuild the store from scratch (catches hard deletes)


@task(service.REFRESH_TASK, max_attempts=3, lease_seconds=3600)
def refresh(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    service.run_refresh(
        ctx.database(session), ctx.workspace_id,
        refresh_id=ctx.payload.get("refresh_id"), full=bool(ctx.payload.get("full")),
    )


_CRON = get_analytics_settings().refresh_cron
validate_cron(_CRON)


@periodic("analytics.nightly_refresh", _CRON, max_attempts=3, lease_seconds=3600)
def nightly_refresh(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    from patronage.workspaces.models import Workspace

    # Never touch the job's own session here: on SQLite it would hold the write lock the refresh needs.
    db = ctx.database(session)
    with db.unit_of_work(read_only=True) as reader:
        workspace = reader.get(Workspace, ctx.workspace_id)
        if workspace is None:
            return
        timezone = workspace.timezone
    full = service.local_today(timezone).weekday() == FULL_REBUILD_WEEKDAY
    service.run_refresh(db, ctx.workspace_id, full=full)
