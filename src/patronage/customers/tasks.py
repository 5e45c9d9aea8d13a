"""Jobs of the customers domain: lifecycle recomputation after orders and returns, and daily."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

# ``merge`` and ``timeline`` register the customer-owned tables and the built-in timeline sources
# at import; importing them here makes sure every worker process has them.
from patronage.customers import lifecycle
from patronage.customers import merge as _merge  # noqa: F401
from patronage.customers import timeline as _timeline  # noqa: F401
from patronage.kit.jobs import JobContext, batch_of, on_event, periodic


def _customer_id(ctx: JobContext) -> int | None:
    payload: dict[str, Any] = ctx.payload.get("payload") or {}
    value = payload.get("customer_id")
    return int(value) if value is not None else None


@on_event("order.recorded", name="customers.lifecycle_on_order_recorded")
@on_event("order.updated", name="customers.lifecycle_on_order_updated")
@on_event("order.status_changed", name="customers.lifecycle_on_order_status")
@on_event("return.applied", name="customers.lifecycle_on_return")
def lifecycle_on_activity(session: Session, ctx: JobContext) -> None:
    """Orders, cancellations and returns change the aggregates: re-evaluate that customer's stage.

    The events' payloads carry ``customer_id``.
    """
    customer_id = _customer_id(ctx)
    if ctx.workspace_id is not None and customer_id is not None:
        lifecycle.recompute_customer(session, ctx.workspace_id, customer_id)


@batch_of("customers.lifecycle_on_order_recorded")
@batch_of("customers.lifecycle_on_order_updated")
@batch_of("customers.lifecycle_on_order_status")
@batch_of("customers.lifecycle_on_return")
def lifecycle_on_activities(session: Session, contexts: Sequence[JobContext]) -> None:
    """A batch of those jobs (one workspace): each distinct customer is recomputed once, set-based.

    Recomputing a customer again in the same transaction finds the stage it just set, so once per
    customer has the effects of once per job."""
    workspaces = {ctx.workspace_id for ctx in contexts}
    if len(workspaces) != 1:
        raise ValueError(f"a batch spans workspaces {sorted(map(str, workspaces))}")
    workspace_id = workspaces.pop()
    customer_ids = [cid for cid in map(_customer_id, contexts) if cid is not None]
    if workspace_id is not None and customer_ids:
        lifecycle.recompute_customers(session, workspace_id, customer_ids)


@on_event("orders.imported", name="customers.lifecycle_on_orders_imported")
def lifecycle_on_orders_imported(session: Session, ctx: JobContext) -> None:
    """A bulk import's chunk of orders: re-evaluate the stages of all its customers at once."""
    from patronage.events.imported import imported_orders

    if ctx.workspace_id is not None:
        rows = imported_orders(session, ctx.workspace_id, ctx.payload.get("payload") or {})
        lifecycle.recompute_customers(session, ctx.workspace_id, [r.customer_id for r in rows])


@periodic("customers.lifecycle_daily", "20 3 * * *")
def lifecycle_daily(session: Session, ctx: JobContext) -> None:
    """Time moves customers on (new -> active, active -> at_risk -> lapsed) without any new data."""
    if ctx.workspace_id is not None:
        lifecycle.recompute_workspace(session, ctx.workspace_id)
