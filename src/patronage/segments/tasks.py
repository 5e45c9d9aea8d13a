"""Segment jobs: hourly bulk evaluation, and per-customer re-evaluation when something about them changes.

Event handlers only enqueue ``segments.reevaluate_customer`` with a per-customer unique key and a
debounce, so a burst of events (an order, its points, a tier change) costs one evaluation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, enqueue, on_event, periodic, task
from patronage.segments import service

REEVALUATE = "segments.reevaluate_customer"
EVALUATE_ALL = "segments.evaluate_all"
DEBOUNCE = timedelta(seconds=5)
TRIGGERS = (
    "order.recorded", "order.updated", "order.status_changed", "return.applied", "event.recorded",
    "customer.created", "customer.updated", "customer.consent_changed", "points.earned", "points.spent",
    "points.expired", "points.reversed", "points.adjusted", "tier.changed",
)

# Batch events of bulk imports (one per chunk, naming thousands of customers).
BULK_TRIGGERS = ("orders.imported", "customers.imported")


def customer_of(payload: dict[str, Any]) -> int | None:
    value = payload.get("customer_id")
    if value is None and isinstance(payload.get("customer"), dict):
        value = payload["customer"].get("id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def schedule_customer(session: Session, workspace_id: int, customer_id: int) -> None:
    enqueue(session, REEVALUATE, {"customer_id": customer_id}, workspace_id=workspace_id,
            unique_key=f"segments:customer:{workspace_id}:{customer_id}", debounce=DEBOUNCE)


def on_change(session: Session, ctx: JobContext) -> None:
    customer_id = customer_of(ctx.payload.get("payload") or {})
    if customer_id is not None and ctx.workspace_id is not None:
        schedule_customer(session, ctx.workspace_id, customer_id)


for _event in TRIGGERS:
    on_event(_event, name=f"segments.on:{_event}")(on_change)


def on_bulk_change(session: Session, ctx: JobContext) -> None:
    """A bulk import's chunk changed many customers at once: one full evaluation (set-based) after the
    import, debounced like the per-customer job, instead of a job per customer."""
    if ctx.workspace_id is not None:
        enqueue(session, EVALUATE_ALL, {}, workspace_id=ctx.workspace_id,
                unique_key=f"segments:all:{ctx.workspace_id}", debounce=DEBOUNCE)


for _event in BULK_TRIGGERS:
    on_event(_event, name=f"segments.on:{_event}")(on_bulk_change)


@on_event("customer.erased", name="segments.on:customer.erased")
def on_erased(session: Session, ctx: JobContext) -> None:
    payload = ctx.payload.get("payload") or {}
    assert ctx.workspace_id is not None
    for customer_id in {customer_of(payload), *(int(p) for p in payload.get("profiles") or [])}:
        if customer_id is not None:
            service.forget_customer(session, ctx.workspace_id, customer_id)


@on_event("customer.merged", name="segments.on:customer.merged")
def on_merged(session: Session, ctx: JobContext) -> None:
    payload = ctx.payload.get("payload") or {}
    assert ctx.workspace_id is not None
    if payload.get("duplicate_id") is not None:
        service.forget_customer(session, ctx.workspace_id, int(payload["duplicate_id"]))
    if payload.get("survivor_id") is not None:
        schedule_customer(session, ctx.workspace_id, int(payload["survivor_id"]))


@task(REEVALUATE)
def reevaluate_customer(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    service.evaluate_customer(session, ctx.workspace_id, int(ctx.payload["customer_id"]))


@periodic(EVALUATE_ALL, "15 * * * *")
def evaluate_all(session: Session, ctx: JobContext) -> None:
    """Hourly: conditions on time (days since last order, windows) change without any event."""
    assert ctx.workspace_id is not None
    service.evaluate_all(session, ctx.workspace_id)
