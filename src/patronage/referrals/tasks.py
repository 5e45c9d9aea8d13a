"""Referral reactions: the referred customer's orders and returns, and the referrer's delayed reward."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, on_event, task
from patronage.referrals import integrations, service


def _event(ctx: JobContext) -> tuple[int, dict[str, Any]]:
    assert ctx.workspace_id is not None
    return ctx.workspace_id, dict(ctx.payload.get("payload") or {})


@on_event("order.recorded", name="referrals.on_order_recorded")
def on_order_recorded(session: Session, ctx: JobContext) -> None:
    workspace_id, p = _event(ctx)
    placed = p["placed_at"]
    service.on_order(
        session, workspace_id, order_id=int(p["order_id"]), customer_id=int(p["customer_id"]),
        total=Decimal(str(p["total"])),
        placed_at=placed if isinstance(placed, datetime) else datetime.fromisoformat(str(placed)),
    )


@on_event("orders.imported", name="referrals.on_orders_imported")
def on_orders_imported(session: Session, ctx: JobContext) -> None:
    """A bulk import's chunk: referred customers among its customers qualify set-based (one look-up)."""
    from patronage.events.imported import imported_orders

    workspace_id, p = _event(ctx)
    service.on_orders(session, workspace_id, imported_orders(session, workspace_id, p))


@on_event("return.applied", name="referrals.on_return_applied")
def on_return_applied(session: Session, ctx: JobContext) -> None:
    workspace_id, p = _event(ctx)
    if p.get("order_id") is not None:
        service.on_order_undone(session, workspace_id, int(p["order_id"]))


@on_event("order.status_changed", name="referrals.on_order_status_changed")
def on_order_status_changed(session: Session, ctx: JobContext) -> None:
    workspace_id, p = _event(ctx)
    if p.get("status") == "cancelled" and p.get("order_id") is not None:
        service.on_order_undone(session, workspace_id, int(p["order_id"]))


@task(service.REWARD_TASK)
def reward_referrer(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    service.reward_referrer(session, ctx.workspace_id, int(ctx.payload["referral_id"]))


integrations.register()
