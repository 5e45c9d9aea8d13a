"""Enqueueing jobs and recording domain events, always inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.jobs.models import JOBS_TABLE, QUEUED_UNIQUE_KEY_PREDICATE, DomainEvent, Job, JobStatus
from patronage.kit.jobs.registry import REGISTRY

_UNIQUE_ENQUEUE_TRIES = 5


def _spec_defaults(task_name: str) -> tuple[int, int]:
    spec = REGISTRY.tasks.get(task_name)
    if spec is None:
        raise KeyError(f"unknown task {task_name!r}: import its domain's tasks module")
    from patronage.config import get_settings

    return spec.max_attempts or get_settings().job_max_attempts, spec.queue_priority


def enqueue(
    session: Session,
    task_name: str,
    payload: dict[str, Any] | None = None,
    *,
    workspace_id: int | None = None,
    run_at: datetime | None = None,
    delay: timedelta | None = None,
    unique_key: str | None = None,
    debounce: timedelta | None = None,
) -> int | None:
    """Add a job in the current transaction; returns its id (or the waiting duplicate's id).

    ``unique_key``: while a job with this key is waiting, enqueueing again adds nothing.
    ``debounce`` (needs ``unique_key``): instead pushes the waiting job's run time to now + debounce and
    gives it the newest payload, so a burst of changes runs the job once after the burst.
    A *running* job with the key does not count as waiting: a new one is added, as the running one may
    have read its inputs before this change.
    """
    max_attempts, priority = _spec_defaults(task_name)
    now = utcnow()
    when = run_at or now + (debounce or delay or timedelta(0))
    values: dict[str, Any] = {
        "workspace_id": workspace_id,
        "task": task_name,
        "payload": payload or {},
        "status": JobStatus.QUEUED,
        "priority": priority,
        "run_at": when,
        "attempts": 0,
        "max_attempts": max_attempts,
        "unique_key": unique_key,
        "created_at": now,
    }
    if unique_key is None:
        return session.execute(insert(Job).values(**values).returning(Job.id)).scalar_one()
    if debounce is not None:
        # Insert, or push the waiting twin and give it the newest payload: one atomic upsert.
        upsert = _unique_insert(session, debounce=True).values(**values).returning(Job.id)
        upserted: int = session.execute(upsert).scalar_one()
        return upserted
    stmt = _unique_insert(session, debounce=False).values(**values).returning(Job.id)
    # The waiting duplicate may be claimed between our conflict and our look-up. Returning None then
    # would lose this enqueue (the running job may have read its inputs before our change), so try
    # again: the insert now succeeds, or another waiting job appeared that will see our change.
    for _ in range(_UNIQUE_ENQUEUE_TRIES):
        job_id: int | None = session.execute(stmt).scalar_one_or_none()
        if job_id is not None:
            return job_id
        waiting = select(Job.id).where(Job.unique_key == unique_key, Job.status == JobStatus.QUEUED)
        waiting_id = session.execute(waiting).scalar_one_or_none()
        if waiting_id is not None:
            return waiting_id
    raise RuntimeError(f"could not enqueue {task_name!r} with unique key {unique_key!r}: heavy contention")


def enqueue_debounced(
    session: Session,
    task_name: str,
    payloads: Mapping[str, dict[str, Any]],
    *,
    workspace_id: int | None,
    debounce: timedelta,
) -> None:
    """``enqueue(session, task_name, payload, unique_key=key, debounce=debounce)`` for every
    ``key: payload`` of ``payloads``, with one statement."""
    if not payloads:
        return
    max_attempts, priority = _spec_defaults(task_name)
    now = utcnow()
    rows = [
        {"workspace_id": workspace_id, "task": task_name, "payload": payloads[key], "status": JobStatus.QUEUED,
         "priority": priority, "run_at": now + debounce, "attempts": 0, "max_attempts": max_attempts,
         "unique_key": key, "created_at": now}
        for key in sorted(payloads)  # one lock order for every writer of these rows (no deadlock)
    ]
    # RETURNING makes SQLAlchemy send the rows as one multi-row INSERT (in key order, so the locks too),
    # where a plain executemany would enter psycopg's pipeline mode, costly on the request path.
    session.execute(_debounced_upsert(session), rows).all()


_DEBOUNCED_UPSERTS: dict[str, Any] = {}


def _debounced_upsert(session: Session) -> Any:
    """The debounced upsert with RETURNING, built once per dialect (it runs in every recording transaction)."""
    name = session.get_bind().dialect.name
    if name not in _DEBOUNCED_UPSERTS:
        stmt = (postgresql if name == "postgresql" else sqlite).insert(JOBS_TABLE)  # Core: no ORM bulk path
        _DEBOUNCED_UPSERTS[name] = stmt.on_conflict_do_update(
            index_elements=["unique_key"], index_where=text(QUEUED_UNIQUE_KEY_PREDICATE),
            set_={"run_at": stmt.excluded.run_at, "payload": stmt.excluded.payload},
        ).returning(JOBS_TABLE.c.id)
    return _DEBOUNCED_UPSERTS[name]


def _unique_insert(session: Session, *, debounce: bool) -> Any:
    """INSERT into jobs that, when a job with the unique key is waiting, adds nothing, or (``debounce``)
    moves the waiting job to the new run time and payload instead. Both are atomic on both databases."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Job)
    target: dict[str, Any] = {"index_elements": ["unique_key"], "index_where": text(QUEUED_UNIQUE_KEY_PREDICATE)}
    if not debounce:
        return stmt.on_conflict_do_nothing(**target)
    return stmt.on_conflict_do_update(
        **target, set_={"run_at": stmt.excluded.run_at, "payload": stmt.excluded.payload}
    )


def _job_rows(
    handlers: list[str], workspace_id: int, event: tuple[int, str, str, dict[str, Any]], now: datetime,
    specs: dict[str, tuple[int, int]],
) -> list[dict[str, Any]]:
    """One job row per handler of ``event`` (id, uid, type, payload); ``specs`` caches the tasks' defaults."""
    event_id, uid, event_type, payload = event
    rows = []
    for handler in handlers:
        if handler not in specs:
            specs[handler] = _spec_defaults(handler)
        max_attempts, priority = specs[handler]
        rows.append({
            "workspace_id": workspace_id,
            "task": handler,
            "payload": {"event_id": event_id, "event_uid": uid, "type": event_type, "payload": payload},
            "status": JobStatus.QUEUED,
            "priority": priority,
            "run_at": now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "unique_key": None,
            "created_at": now,
        })
    return rows


def record_event(
    session: Session, workspace_id: int, event_type: str, payload: dict[str, Any]
) -> DomainEvent:
    """Record a domain event and enqueue one job per subscribed handler, in the same transaction.

    The jobs go in with one INSERT statement (an order's event has half a dozen subscribers). The
    event's relays (``relay``) run here too, in the same transaction.
    """
    now = utcnow()
    event = DomainEvent(
        uid=f"evt_{uuid.uuid4().hex}",
        workspace_id=workspace_id,
        type=event_type,
        payload=payload,
        occurred_at=now,
    )
    session.add(event)
    session.flush()
    handlers = REGISTRY.subscribers(session, workspace_id, event_type)
    rows = _job_rows(handlers, workspace_id, (event.id, event.uid, event_type, payload), now, {})
    for relay in REGISTRY.relays_of(event_type):
        relay(session, workspace_id, event_type, payload)
    if rows:
        # An executemany, which SQLAlchemy sends as one multi-row INSERT with a cached compiled form
        # (``insert().values([...])`` is compiled anew every time, costing more CPU than it saves).
        session.execute(insert(Job), rows)
    return event


# Core inserts of the tables (no ORM bulk machinery). The jobs INSERT asks for RETURNING so that SQLAlchemy
# sends the rows as one multi-row statement: without it, psycopg's executemany enters pipeline mode, which
# costs more CPU than the dozen rows of one request's events (measured: about 40% of an order's request).
_EVENTS_TABLE = cast(Table, DomainEvent.__table__)
_INSERT_EVENTS = insert(_EVENTS_TABLE).returning(_EVENTS_TABLE.c.id, sort_by_parameter_order=True)
_INSERT_JOBS = insert(JOBS_TABLE).returning(JOBS_TABLE.c.id)


def record_events_bulk(
    session: Session, workspace_id: int, events: list[tuple[str, dict[str, Any]]]
) -> list[str]:
    """``record_event`` for many events at once (imports): two multi-row INSERTs instead of 2N.

    Returns the events' uids in order.
    """
    if not events:
        return []
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {"uid": f"evt_{uuid.uuid4().hex}", "workspace_id": workspace_id, "type": t, "payload": p, "occurred_at": now}
        for t, p in events
    ]
    ids = session.execute(_INSERT_EVENTS, rows)
    specs: dict[str, tuple[int, int]] = {}
    handlers: dict[str, list[str]] = {}  # the subscribers of each type, asked once per call
    jobs: list[dict[str, Any]] = []
    for row, event_id in zip(rows, ids.scalars(), strict=True):
        kind = str(row["type"])
        if kind not in handlers:
            handlers[kind] = REGISTRY.subscribers(session, workspace_id, kind)
        jobs += _job_rows(handlers[kind], workspace_id, (event_id, str(row["uid"]), kind, row["payload"]), now,
                          specs)
        for relay in REGISTRY.relays_of(kind):
            relay(session, workspace_id, kind, row["payload"])
    if jobs:
        session.execute(_INSERT_JOBS, jobs)
    return [str(r["uid"]) for r in rows]
