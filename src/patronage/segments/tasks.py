"""Segment jobs: hourly bulk evaluation, and per-customer re-evaluation when something about them changes.

Events about a customer only enqueue ``segments.reevaluate_customer`` with a per-customer unique key and
a debounce, so a burst of events (an order, its points, a tier change) costs one evaluation. That
enqueue is a relay (``kit.jobs.relay``): it runs in the transaction recording the event and is done at
its commit, one statement for all the transaction's customers, instead of through a job row per event
(an order set off three). The re-evaluation has a batch form that evaluates all its customers with
one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, batch_of, enqueue, on_event, periodic, relay, task
from patronage.kit.jobs.deferred import enqueue_debounced_at_commit
from patronage.kit.jobs.queue import enqueue_debounced
from patronage.kit.memo import per_transaction
from patronage.segments import service
from patronage.segments.repository import DYNAMIC_MEMO, SegmentRepository

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


def _key(workspace_id: int, customer_id: int) -> str:
    return f"segments:customer:{workspace_id}:{customer_id}"


def has_dynamic_segments(session: Session, workspace_id: int) -> bool:
    """Whether the workspace has a dynamic segment, asked once per transaction (``kit.memo``). Without
    one a re-evaluation has nothing to do: creating one evaluates every customer at once, and the hourly
    ``evaluate_all`` catches a change that committed while it was being created."""
    return per_transaction(session, (DYNAMIC_MEMO, workspace_id),
                           lambda: SegmentRepository(session, workspace_id).any_dynamic())


def schedule_customer(session: Session, workspace_id: int, customer_id: int) -> None:
    """Re-evaluate the customer once the burst is over; enqueued at the transaction's commit (nothing
    when the workspace has no dynamic segment)."""
    if not has_dynamic_segments(session, workspace_id):
        return
    enqueue_debounced_at_commit(session, REEVALUATE, _key(workspace_id, customer_id), {"customer_id": customer_id},
                                workspace_id=workspace_id, debounce=DEBOUNCE)


def on_trigger(session: Session, workspace_id: int, event_type: str, payload: dict[str, Any]) -> None:
    """The relay of every trigger event, run by ``record_event`` in the recording transaction."""
    customer_id = customer_of(payload)
    if customer_id is not None:
        schedule_customer(session, workspace_id, customer_id)


def on_change(session: Session, ctx: JobContext) -> None:
    """The job-based relay these events had before ``on_trigger``: kept for jobs queued back then."""
    customer_id = customer_of(ctx.payload.get("payload") or {})
    if customer_id is not None and ctx.workspace_id is not None:
        # Right away, like its batch form: the relay's transaction does nothing else.
        enqueue(session, REEVALUATE, {"customer_id": customer_id}, workspace_id=ctx.workspace_id,
                unique_key=_key(ctx.workspace_id, customer_id), debounce=DEBOUNCE)


def on_changes(session: Session, contexts: Sequence[JobContext]) -> None:
    """``on_change`` for a batch: one debounced enqueue per distinct customer, all in one statement.
    Re-enqueueing a customer within the batch only pushed its waiting job again, to the same time."""
    workspace_id = contexts[0].workspace_id
    if workspace_id is None:
        return
    customers = {customer_of(ctx.payload.get("payload") or {}) for ctx in contexts}
    enqueue_debounced(session, REEVALUATE, {
        _key(workspace_id, customer_id): {"customer_id": customer_id}
        for customer_id in customers if customer_id is not None
    }, workspace_id=workspace_id, debounce=DEBOUNCE)


for _event in TRIGGERS:
    relay(_event)(on_trigger)
    # No longer subscribed: registered so that relay jobs queued by an older version still run.
    task(f"segments.on:{_event}")(on_change)
    batch_of(f"segments.on:{_event}")(on_changes)


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


@batch_of(REEVALUATE)
def reevaluate_customers(session: Session, contexts: Sequence[JobContext]) -> None:
    workspace_id = contexts[0].workspace_id
    assert workspace_id is not None
    service.evaluate_customers(session, workspace_id, [int(ctx.payload["customer_id"]) for ctx in contexts])


@periodic(EVALUATE_ALL, "15 * * * *")
def evaluate_all(session: Session, ctx: JobContext) -> None:
    """Hourly: conditions on time (days since last order, windows) change without any event."""
    assert ctx.workspace_id is not None
    service.evaluate_all(session, ctx.workspace_id)
