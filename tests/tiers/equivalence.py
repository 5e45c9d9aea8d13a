"""Batch handlers against single handlers: run the same jobs both ways from the same database state and
compare everything the database holds afterwards.

Each way runs inside one outer transaction that is rolled back afterwards (the single handler's jobs each
in a session of their own, committed to a savepoint, like the worker's one transaction per job), and on
PostgreSQL the id sequences are put back, so both ways allocate the same ids. With the clock frozen, the
two snapshots must be equal row for row, ids and timestamps included; only random uids are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import count
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from patronage.kit.db import Database
from patronage.kit.jobs.registry import REGISTRY, JobContext
from patronage.kit.models import Base

Snapshot = dict[str, list[dict[str, Any]]]
_RANDOM_KEYS = {"uid", "event_uid"}
_job_ids = count(1_000_000)


def job_context(task: str, workspace_id: int, payload: dict[str, Any], *, event_type: str, when: datetime,
                event_id: int = 0) -> JobContext:
    """What the worker hands a handler for an event's job (see ``Worker.execute``)."""
    return JobContext(
        job_id=next(_job_ids), task=task, workspace_id=workspace_id,
        payload={"event_id": event_id, "event_uid": f"evt_test{event_id}", "type": event_type, "payload": payload},
        attempt=1, max_attempts=10, scheduled_for=when,
    )


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in _RANDOM_KEYS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def snapshot(conn: Connection) -> Snapshot:
    """Every row of every table, in primary key order (random uids left out).

    Point accounts are compared by customer, without their ids: a batch locks (and so creates missing
    empty accounts) in ascending customer order, the house's lock order, where jobs one by one create
    them in job order. Tier credits are compared in id order without the ids: on PostgreSQL an
    ``INSERT ... ON CONFLICT DO NOTHING`` that finds its source already there still uses up an id, and a
    batch does not send a source it holds twice. Nothing refers to either id. Debounced follow-up jobs
    (segment re-evaluations) are compared as a set: a batch enqueues its customers' jobs in key order,
    to take their row locks in the house order, where jobs one by one enqueue them in job order."""
    found: Snapshot = {}
    for table in Base.metadata.sorted_tables:
        if table.name == "point_accounts":
            rows = conn.execute(select(table).order_by(table.c.workspace_id, table.c.customer_id)).mappings()
        else:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()
        keep_id = table.name not in {"point_accounts", "tier_credits", "jobs"}
        found[table.name] = [_scrub({k: v for k, v in r.items() if keep_id or k != "id"}) for r in rows]
        if table.name == "jobs":
            found[table.name].sort(key=repr)
    return found


def _restart_sequences(conn: Connection) -> None:
    """PostgreSQL sequences ignore rollbacks: set each back to just after its table's largest id."""
    for table in Base.metadata.sorted_tables:
        if "id" in table.c and table.c.id.autoincrement is True:
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM \"{table.name}\"), 0) + 1, false)"
            ))


def _run(db: Database, body: Callable[[Callable[[], Session]], None]) -> Snapshot:
    with db.engine.connect() as conn:
        outer = conn.begin()
        try:
            body(lambda: db.sessions(bind=conn, join_transaction_mode="create_savepoint"))
            return snapshot(conn)
        finally:
            outer.rollback()
            if db.dialect == "postgresql":
                with conn.begin():
                    _restart_sequences(conn)


def run_single(db: Database, contexts: Sequence[JobContext]) -> Snapshot:
    """Each job with its task's single handler, one transaction (savepoint) per job, in order."""

    def body(new_session: Callable[[], Session]) -> None:
        for ctx in contexts:
            session = new_session()
            try:
                REGISTRY.tasks[ctx.task].fn(session, ctx)
                session.commit()
            finally:
                session.close()

    return _run(db, body)


def run_batch(db: Database, contexts: Sequence[JobContext]) -> Snapshot:
    """All the jobs (one task) handed to the task's batch handler in one transaction."""
    tasks = {ctx.task for ctx in contexts}
    assert len(tasks) == 1, tasks
    batch_fn = REGISTRY.tasks[tasks.pop()].batch_fn
    assert batch_fn is not None

    def body(new_session: Callable[[], Session]) -> None:
        session = new_session()
        try:
            batch_fn(session, contexts)
            session.commit()
        finally:
            session.close()

    return _run(db, body)


def assert_same_effects(db: Database, contexts: Sequence[JobContext]) -> Snapshot:
    """The batch handler leaves the database exactly as the single handler run job by job; returns it."""
    before = _run(db, lambda _: None)
    single = run_single(db, contexts)
    batch = run_batch(db, contexts)
    for table, rows in single.items():
        assert batch[table] == rows, f"table {table} differs:\n{_diff(rows, batch[table])}"
    assert single != before, "the jobs changed nothing: the comparison proves nothing"
    return single


def _diff(single: list[dict[str, Any]], batch: list[dict[str, Any]]) -> str:
    lines = [f"single {len(single)} rows, batch {len(batch)} rows"]
    for a, b in zip(single, batch, strict=False):
        if a != b:
            lines.append(f"  single: {a}\n  batch:  {b}")
    return "\n".join(lines[:7])
