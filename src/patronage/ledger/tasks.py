"""Ledger jobs: settle (release pending points, expire points) and expiry warnings, per workspace."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, enqueue, periodic
from patronage.ledger import integrations, maintenance

SETTLE_TASK = "ledger.settle"


@periodic(SETTLE_TASK, "*/10 * * * *")
def settle_workspace(session: Session, ctx: JobContext) -> None:
    """Every 10 minutes: post releases and expiries that fell due. Large backlogs continue in a follow-up
    job, so one job's transaction stays short."""
    assert ctx.workspace_id is not None
    if maintenance.settle_due(session, ctx.workspace_id) >= maintenance.BATCH:
        enqueue(session, SETTLE_TASK, {"continued": True}, workspace_id=ctx.workspace_id,
                unique_key=f"{SETTLE_TASK}:more:{ctx.workspace_id}")


@periodic("ledger.warn_expiring", "5 9 * * *")
def warn_expiring(session: Session, ctx: JobContext) -> None:
    """Every morning (workspace time): ``points.expiring_soon`` for points expiring within the warning
    horizon, once per lot (or once per inactivity deadline)."""
    assert ctx.workspace_id is not None
    maintenance.warn_expiring(session, ctx.workspace_id)


integrations.register()
