"""Segment re-evaluations are relayed inside the recording transaction and enqueued at its commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.deferred import pending_keys
from patronage.kit.jobs.models import Job
from patronage.kit.jobs.queue import record_event, record_events_bulk
from patronage.segments import service, tasks
from patronage.segments.schemas import SegmentCreate
from tests.conftest import Tenant, make_tenant


def _waiting(db: Database) -> list[tuple[object, ...]]:
    with db.unit_of_work(read_only=True) as session:
        return [tuple(row) for row in session.execute(select(Job.unique_key, Job.payload).where(
            Job.task == tasks.REEVALUATE, Job.status == "queued").order_by(Job.unique_key))]


def _key(ws: int, customer_id: int) -> str:
    return f"segments:customer:{ws}:{customer_id}"


@pytest.fixture(autouse=True)
def dynamic_segment(db: Database, tenant: Tenant) -> None:
    """Re-evaluations are relayed only in a workspace with a dynamic segment (see the last tests)."""
    with db.unit_of_work() as session:
        _buyers(session, tenant.workspace_id)


def _buyers(session: Session, ws: int) -> None:
    service.create_segment(session, ws, SegmentCreate(
        name="Buyers", definition={"field": "orders_count", "op": "gte", "value": 1}), actor="t")


def test_trigger_events_enqueue_one_reevaluation_per_customer_at_commit(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as session:
        record_event(session, ws, "order.recorded", {"customer_id": 12})
        record_events_bulk(session, ws, [("points.earned", {"customer_id": 3}),
                                         ("customer.created", {"customer": {"id": "12"}}),
                                         ("segment.entered", {"customer_id": 99}),  # not a trigger
                                         ("points.earned", {"note": "no customer"})])
        # Nothing is locked before the commit: the keys wait in the session, in their lock order.
        assert pending_keys(session) == [_key(ws, 12), _key(ws, 3)]
        assert not session.scalars(select(Job.id).where(Job.task == tasks.REEVALUATE)).all()
        tasks_queued = set(session.scalars(select(Job.task)))
    assert not {t for t in tasks_queued if t.startswith("segments.on:")}  # the relays cost no job row
    assert _waiting(db) == [(_key(ws, 12), {"customer_id": 12}), (_key(ws, 3), {"customer_id": 3})]


def test_a_burst_pushes_the_waiting_reevaluation_back(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    t0 = clock.utcnow()
    clock.freeze(t0)
    with db.unit_of_work() as session:
        record_event(session, ws, "order.recorded", {"customer_id": 5})
    clock.advance(timedelta(seconds=3))
    with db.unit_of_work() as session:
        record_event(session, ws, "points.earned", {"customer_id": 5})
    with db.unit_of_work(read_only=True) as session:
        jobs = session.scalars(select(Job).where(Job.task == tasks.REEVALUATE)).all()
    assert [(job.unique_key, job.run_at) for job in jobs] == [(_key(ws, 5), t0 + timedelta(seconds=3) + tasks.DEBOUNCE)]


def test_rolled_back_transactions_and_savepoints(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        record_event(session, ws, "order.recorded", {"customer_id": 1})
        raise RuntimeError("the request failed")
    assert _waiting(db) == []  # rolled back with the event
    with db.unit_of_work() as session:
        with session.begin_nested():
            record_event(session, ws, "order.recorded", {"customer_id": 2})
        # A savepoint's release does not take the rows yet: they are taken last, at the real commit.
        assert pending_keys(session) == [_key(ws, 2)]
        assert not session.scalars(select(Job.id).where(Job.task == tasks.REEVALUATE)).all()
    assert _waiting(db) == [(_key(ws, 2), {"customer_id": 2})]
    with db.unit_of_work() as session:  # the next transaction of a session starts with nothing pending
        assert pending_keys(session) == []


def test_opposite_orders_in_two_transactions_do_not_deadlock(db: Database, tenant: Tenant) -> None:
    """Two transactions each relaying customers 1 and 2, in opposite orders and in separate statements
    (two requests of a group commit, a job batch recording events twice). Were the waiting jobs' rows
    locked at record time, the second step would wait for the other transaction (and PostgreSQL would
    have to kill one); deferred to the commit, nothing waits before it."""
    ws = tenant.workspace_id
    with db.unit_of_work() as session:  # waiting jobs to lock, as under load
        record_events_bulk(session, ws, [("order.recorded", {"customer_id": 1}),
                                         ("order.recorded", {"customer_id": 2})])
    first, second = db.sessions(), db.sessions()
    try:
        if db.dialect == "postgresql":
            for session in (first, second):
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
        if db.dialect == "sqlite":  # one writer: the second transaction starts once the first is done
            record_event(first, ws, "order.recorded", {"customer_id": 1})
            record_event(first, ws, "points.earned", {"customer_id": 2})
            first.commit()
            record_event(second, ws, "order.recorded", {"customer_id": 2})
            record_event(second, ws, "points.earned", {"customer_id": 1})
            second.commit()
        else:
            record_event(first, ws, "order.recorded", {"customer_id": 1})
            record_event(second, ws, "order.recorded", {"customer_id": 2})
            record_event(first, ws, "points.earned", {"customer_id": 2})  # would wait for `second`
            record_event(second, ws, "points.earned", {"customer_id": 1})  # would close the cycle
            first.commit()
            second.commit()
    finally:
        first.close()
        second.close()
    assert _waiting(db) == [(_key(ws, 1), {"customer_id": 1}), (_key(ws, 2), {"customer_id": 2})]


def test_relay_jobs_queued_by_an_older_version_still_run() -> None:
    from patronage.kit.jobs.registry import REGISTRY

    for event_type in tasks.TRIGGERS:
        name = f"segments.on:{event_type}"
        assert REGISTRY.tasks[name].fn is tasks.on_change and REGISTRY.tasks[name].batch_fn is tasks.on_changes
        assert name not in REGISTRY.handler_tasks(event_type)
        assert tasks.on_trigger in REGISTRY.relays_of(event_type)


def test_a_workspace_without_dynamic_segments_relays_nothing(db: Database, tenant: Tenant) -> None:
    """Its re-evaluations would find nothing to evaluate: no job is queued for them. A dynamic segment
    made in the same transaction counts for the events recorded after it."""
    other = make_tenant(db, "relay-none")
    with db.unit_of_work() as session:
        record_event(session, other.workspace_id, "order.recorded", {"customer_id": 7})
        service.create_segment(session, other.workspace_id, SegmentCreate(
            name="Static", kind="static"), actor="t")
        record_event(session, other.workspace_id, "points.earned", {"customer_id": 8})
        assert pending_keys(session) == []
        _buyers(session, other.workspace_id)
        record_event(session, other.workspace_id, "points.earned", {"customer_id": 9})
        assert pending_keys(session) == [_key(other.workspace_id, 9)]
    with db.unit_of_work() as session:  # the next transaction asks again, and finds the segment
        record_event(session, other.workspace_id, "points.earned", {"customer_id": 7})
        assert pending_keys(session) == [_key(other.workspace_id, 7)]
