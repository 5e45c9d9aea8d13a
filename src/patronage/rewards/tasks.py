"""Reward reactions: a cancelled order gives its coupons back; coupons past their date expire hourly."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, enqueue, on_event, periodic
from patronage.rewards import coupons, integrations

EXPIRE_TASK = "rewards.expire_coupons"
BATCH = 500


@on_event("order.status_changed", name="rewards.on_order_status_changed")
def on_order_status_changed(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    payload = dict(ctx.payload.get("payload") or {})
    if payload.get("status") == "cancelled" and payload.get("order_id") is not None:
        coupons.release_for_order(session, ctx.workspace_id, int(payload["order_id"]))


@periodic(EXPIRE_TASK, "5 * * * *")
def expire_coupons(session: Session, ctx: JobContext) -> None:
    """A full batch re-enqueues itself for the rest."""
    assert ctx.workspace_id is not None
    if coupons.expire_due(session, ctx.workspace_id, limit=BATCH) >= BATCH:
        enqueue(session, EXPIRE_TASK, {}, workspace_id=ctx.workspace_id, unique_key=f"{EXPIRE_TASK}:{ctx.workspace_id}")

integrations.register()
