"""The fast path for many behavioural events at once: the API's rules, set-based writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.events import behaviour
from patronage.events.behaviour_schemas import EventIn
from patronage.events.catalog import BUILTIN_TYPES
from patronage.events.importer.orders_bulk import BulkContext, Outcome, customers_for
from patronage.events.models import BehaviourEvent
from patronage.events.repository import BehaviourEventRepository
from patronage.events.schemas import content_hash
from patronage.kit.clock import utcnow
from patronage.kit.errors import PatronageError
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.upsert import insert_with_ids

EVENT_COLUMNS = (
    "workspace_id", "external_id", "customer_id", "type", "occurred_at", "properties", "source", "content_hash",
    "created_at", "updated_at",
)


def ingest_events(session: Session, ctx: BulkContext, events: Sequence[EventIn]) -> list[Outcome]:
    validators = behaviour.Validators(session, ctx.workspace_id)
    validators.preload([e.type for e in events])
    outcomes: list[Outcome | None] = [None] * len(events)
    digests = [content_hash(e) for e in events]
    known = BehaviourEventRepository(session, ctx.workspace_id).fingerprints([e.external_id for e in events])
    fresh: list[int] = []
    later: list[int] = []
    seen: set[str] = set()
    for i, event in enumerate(events):
        existing = known.get(event.external_id)
        if existing is not None or event.external_id in seen or event.customer_external_id is None:
            later.append(i)  # the single path answers unchanged, conflict, or resolves the email
            continue
        try:
            validators.check(event.type, event.properties)
        except PatronageError as exc:
            outcomes[i] = Outcome("error", exc)
            continue
        seen.add(event.external_id)
        fresh.append(i)
    if fresh:
        _insert_new(session, ctx, [events[i] for i in fresh], [digests[i] for i in fresh])
        for i in fresh:
            outcomes[i] = Outcome("created")
    for i in later:
        try:
            with session.begin_nested():
                status, _ = behaviour.record_behaviour_event(
                    session, ctx.workspace_id, events[i], actor=ctx.actor, source=ctx.source, validators=validators
                )
            outcomes[i] = Outcome(status)
        except PatronageError as exc:
            outcomes[i] = Outcome("error", exc)
    return [o if o is not None else Outcome("error", PatronageError("not processed")) for o in outcomes]


def _insert_new(session: Session, ctx: BulkContext, events: list[EventIn], digests: list[str]) -> None:
    customer_of = customers_for(session, ctx, [e.customer_external_id or "" for e in events])
    now = utcnow()
    rows = [
        (ctx.workspace_id, e.external_id, customer_of[e.customer_external_id or ""], e.type, e.occurred_at,
         e.properties, ctx.source, digest, now, now)
        for e, digest in zip(events, digests, strict=True)
    ]
    table: Table = BehaviourEvent.__table__  # type: ignore[assignment]
    ids = insert_with_ids(session, table, EVENT_COLUMNS, rows)
    payloads: list[tuple[str, dict[str, Any]]] = [
        ("event.recorded", {
            "event_id": event_id, "external_id": row[1], "customer_id": row[2], "type": row[3],
            "builtin": row[3] in BUILTIN_TYPES, "occurred_at": row[4].isoformat(), "source": ctx.source,
        })
        for event_id, row in zip(ids, rows, strict=True)
    ]
    record_events_bulk(session, ctx.workspace_id, payloads)
