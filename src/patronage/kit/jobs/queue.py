"""Enqueueing jobs and recording domain events, always inside the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.jobs.models import QUEUED_UNIQUE_KEY_PREDICATE, DomainEvent, Job, JobStatus
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
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(Job)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["unique_key"],
            index_where=text(QUEUED_UNIQUE_KEY_PREDICATE),
        )
        .returning(Job.id)
    )
    # The waiting duplicate may be claimed between our conflict and our look-up. Returning None then
    # would lose this enqueue (the running job may have read its inputs before our change), so try
    # again: the insert now succeeds, or another waiting job appeared that will see our change.
    for _ in range(_UNIQUE_ENQUEUE_TRIES):
        job_id: int | None = session.execute(stmt).scalar_one_or_none()
        if job_id is not None:
            return job_id
        waiting = select(Job.id).where(Job.unique_key == unique_key, Job.status == JobStatus.QUEUED)
        waiting_id = session.execute(waiting).scalar_one_or_none()
        if waiting_id is None:
            continue
        if debounce is None:
            return waiting_id
        pushed = session.execute(
            update(Job)
            .where(Job.id == waiting_id, Job.status == JobStatus.QUEUED)
            .values(run_at=when, payload=payload or {})
        )
        if pushed.rowcount:  # type: ignore[attr-defined]
            return waiting_id
    raise RuntimeError(f"could not enqueue {task_name!r} with unique key {unique_key!r}: heavy contention")


def record_event(
    session: Session, workspace_id: int, event_type: str, payload: dict[str, Any]
) -> DomainEvent:
    """Record a domain event and enqueue one job per subscribed handler, in the same transaction."""
    event = DomainEvent(
        uid=f"evt_{uuid.uuid4().hex}",
        workspace_id=workspace_id,
        type=event_type,
        payload=payload,
        occurred_at=utcnow(),
    )
    session.add(event)
    session.flush()
    for handler in REGISTRY.handler_tasks(event_type):
        enqueue(
            session,
            handler,
            {"event_id": event.id, "event_uid": event.uid, "type": event_type, "payload": payload},
            workspace_id=workspace_id,
        )
    return event


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
    ids = session.execute(insert(DomainEvent).returning(DomainEvent.id, sort_by_parameter_order=True), rows)
    jobs: list[dict[str, Any]] = []
    for row, event_id in zip(rows, ids.scalars(), strict=True):
        for handler in REGISTRY.handler_tasks(str(row["type"])):
            max_attempts, priority = _spec_defaults(handler)
            jobs.append(
                {
                    "workspace_id": workspace_id,
                    "task": handler,
                    "payload": {"event_id": event_id, "event_uid": row["uid"], "type": row["type"],
                                "payload": row["payload"]},
                    "status": JobStatus.QUEUED,
                    "priority": priority,
                    "run_at": now,
                    "attempts": 0,
                    "max_attempts": max_attempts,
                    "unique_key": None,
                    "created_at": now,
                }
            )
    if jobs:
        session.execute(insert(Job), jobs)
    return [str(r["uid"]) for r in rows]
