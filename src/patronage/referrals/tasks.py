"""Referral reactions: the referred customer's orders and returns, and the referrer's delayed reward."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, batch_of, on_event, task
from patronage.referrals import integrations, service


def _event(ctx: JobContext) -> tuple[int, dict[str, Any]]:
    assert ctx.workspace_id is not None
    return ctx.workspace_id, dict(ctx.payload.get("payload") or {})


@on_event("order.recorded", name="referrals.on_order_recorded")
def on_order_recorded(session: Session, ctx: JobContext) -> None:
    workspace_id, p = _event(ctx)
    order_id, customer_id, total, placed_at = _order(p)
    service.on_order(session, workspace_id, order_id=order_id, customer_id=customer_id, total=total,
                     placed_at=placed_at)


def _order(p: dict[str, Any]) -> tuple[int, int, Decimal, datetime]:
    """(order id, customer id, total, placed_at) of an ``order.recorded`` payload."""
    placed = p["placed_at"]
    return (int(p["order_id"]), int(p["customer_id"]), Decimal(str(p["total"])),
            placed if isinstance(placed, datetime) else datetime.fromisoformat(str(placed)))


@batch_of("referrals.on_order_recorded")
def on_orders_recorded(session: Session, contexts: Sequence[JobContext]) -> None:
    """``on_order_recorded`` for a batch of jobs of one workspace, in job order (see
    ``service.on_orders_in_turn``: one look-up, as most customers were never referred)."""
    workspaces = {ctx.workspace_id for ctx in contexts}
    if len(workspaces) != 1 or None in workspaces:
        raise ValueError(f"a batch needs one workspace, not {sorted(map(str, workspaces))}")
    (workspace_id,) = workspaces
    assert workspace_id is not None
    service.on_orders_in_turn(session, workspace_id, [_order(dict(ctx.payload.get("payload") or {}))
                                                      for ctx in contexts])


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
