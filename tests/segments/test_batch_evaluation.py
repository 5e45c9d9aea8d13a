"""The segment jobs' batch forms have exactly the effects of their single forms run one after another."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs import JobContext, enqueue
from patronage.kit.jobs.models import DomainEvent, Job
from patronage.kit.jobs.registry import REGISTRY
from patronage.segments import service, tasks
from patronage.segments.models import Segment, SegmentMembership
from patronage.segments.schemas import SegmentCreate
from tests.conftest import Tenant

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
State = dict[str, Any]


def _customers(db: Database, ws: int, orders: dict[str, int]) -> dict[str, int]:
    with db.unit_of_work() as session:
        made = {name: Customer(workspace_id=ws, external_id=name, orders_count=n) for name, n in orders.items()}
        session.add_all(made.values())
        session.flush()
        return {name: c.id for name, c in made.items()}


def _state(session: Session, ws: int, after_event: int, after_job: int) -> State:
    """What a run changed: memberships, counters, and the events and jobs it added (ids left out:
    they differ between runs)."""
    session.flush()
    memberships = session.execute(select(SegmentMembership.segment_id, SegmentMembership.customer_id)
                                  .where(SegmentMembership.workspace_id == ws))
    counts = session.execute(select(Segment.id, Segment.member_count).where(Segment.workspace_id == ws))
    events = session.execute(select(DomainEvent.type, DomainEvent.payload)
                             .where(DomainEvent.workspace_id == ws, DomainEvent.id > after_event)
                             .order_by(DomainEvent.id))
    jobs = session.execute(select(Job.task, Job.payload, Job.unique_key, Job.run_at, Job.status)
                           .where(Job.id > after_job).order_by(Job.id))
    return {
        "memberships": sorted(memberships), "counts": sorted(counts), "events": list(events),
        "jobs": [(task, payload.get("type"), payload.get("payload", payload), key, run_at, status)
                 for task, payload, key, run_at, status in jobs],
    }


def _run_and_roll_back(db: Database, ws: int, run: Callable[[Session], None]) -> State:
    """Run from the current database state, capture what changed, and undo it for the next run."""
    session = db.sessions()
    try:
        after_event = session.scalar(select(func.max(DomainEvent.id))) or 0
        after_job = session.scalar(select(func.max(Job.id))) or 0
        run(session)
        return _state(session, ws, after_event, after_job)
    finally:
        session.rollback()
        session.close()


def _ctx(job_id: int, task: str, ws: int, payload: dict[str, Any]) -> JobContext:
    return JobContext(job_id, task, ws, payload, 1, 10, T0)


def test_batch_reevaluation_equals_one_by_one(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.freeze(T0)
    # One subscriber per transition event, so the jobs that recording the events enqueues compare too.
    monkeypatch.setattr(REGISTRY, "handlers", {service.ENTERED: [tasks.EVALUATE_ALL],
                                               service.EXITED: [tasks.EVALUATE_ALL]})
    monkeypatch.setattr(REGISTRY, "conditional", {})
    ws = tenant.workspace_id
    ids = _customers(db, ws, {"newcomer": 0, "lapsed": 3, "erased": 2, "steady": 2})
    with db.unit_of_work() as session:
        repeaters = service.create_segment(session, ws, SegmentCreate(
            name="Repeaters", definition={"field": "orders_count", "op": "gte", "value": 2}), actor="t").id
        # Depends on membership of the first: a customer entering Repeaters enters this one only when
        # re-evaluated again afterwards.
        service.create_segment(session, ws, SegmentCreate(
            name="Known repeaters", definition={"field": "segments", "op": "any_of", "value": [str(repeaters)]}),
            actor="t")
        service.create_segment(session, ws, SegmentCreate(
            name="Buyers", definition={"field": "orders_count", "op": "gte", "value": 1}), actor="t")
    with db.unit_of_work() as session:
        session.get_one(Customer, ids["newcomer"]).orders_count = 4
        session.get_one(Customer, ids["lapsed"]).orders_count = 0
        session.get_one(Customer, ids["erased"]).erased_at = T0
    order = [ids["newcomer"], ids["lapsed"], ids["newcomer"], ids["erased"], 10**9, ids["steady"], ids["lapsed"]]

    def one_by_one(session: Session) -> None:
        for customer_id in order:
            service.evaluate_customer(session, ws, customer_id)

    def batched(session: Session) -> None:
        spec = REGISTRY.tasks[tasks.REEVALUATE]
        assert spec.batch_fn is not None
        spec.batch_fn(session, [_ctx(i, tasks.REEVALUATE, ws, {"customer_id": c}) for i, c in enumerate(order)])

    single, batch = _run_and_roll_back(db, ws, one_by_one), _run_and_roll_back(db, ws, batched)
    assert batch == single
    entered = [(e["segment_name"], e["customer_id"]) for t, e in single["events"] if t == service.ENTERED]
    assert entered == [("Repeaters", ids["newcomer"]), ("Buyers", ids["newcomer"]),
                       ("Known repeaters", ids["newcomer"])]  # the last one on the second evaluation
    assert len([t for t, _ in single["events"] if t == service.EXITED]) == 6  # lapsed: 3, erased: 3
    assert [(task, kind, payload) for task, kind, payload, *_ in single["jobs"]] == [
        (tasks.EVALUATE_ALL, kind, payload) for kind, payload in single["events"]
    ]


def test_batch_relays_enqueue_like_one_by_one(db: Database, tenant: Tenant) -> None:
    clock.freeze(T0)
    ws = tenant.workspace_id
    ids = _customers(db, ws, {"a": 0, "b": 0})
    with db.unit_of_work() as session:  # b already has a re-evaluation waiting, due earlier
        enqueue(session, tasks.REEVALUATE, {"customer_id": ids["b"]}, workspace_id=ws,
                unique_key=f"segments:customer:{ws}:{ids['b']}", run_at=T0 - timedelta(seconds=1))
    clock.advance(timedelta(seconds=3))
    task = "segments.on:order.recorded"
    contexts = [
        _ctx(1, task, ws, {"type": "order.recorded", "payload": {"customer_id": ids["a"]}}),
        _ctx(2, task, ws, {"type": "order.recorded", "payload": {"customer": {"id": str(ids["b"])}}}),
        _ctx(3, task, ws, {"type": "order.recorded", "payload": {"customer_id": ids["a"]}}),
        _ctx(4, task, ws, {"type": "order.recorded", "payload": {"note": "no customer"}}),
    ]

    results: list[list[tuple[Any, ...]]] = []

    def waiting(session: Session) -> None:
        results.append(list(session.execute(select(Job.unique_key, Job.payload, Job.run_at).where(
            Job.task == tasks.REEVALUATE, Job.status == "queued").order_by(Job.unique_key))))

    def one_by_one(session: Session) -> None:
        for ctx in contexts:
            tasks.on_change(session, ctx)
        waiting(session)

    def batched(session: Session) -> None:
        spec = REGISTRY.tasks[task]
        assert spec.batch_fn is not None
        spec.batch_fn(session, contexts)
        waiting(session)

    _run_and_roll_back(db, ws, one_by_one)
    _run_and_roll_back(db, ws, batched)
    single, batch = results
    assert batch == single
    due = T0 + timedelta(seconds=3) + tasks.DEBOUNCE
    assert single == sorted([(f"segments:customer:{ws}:{ids['a']}", {"customer_id": ids["a"]}, due),
                             (f"segments:customer:{ws}:{ids['b']}", {"customer_id": ids["b"]}, due)])


def test_every_relay_and_the_reevaluation_have_a_batch_form() -> None:
    names = [f"segments.on:{event}" for event in tasks.TRIGGERS] + [tasks.REEVALUATE]
    assert all(REGISTRY.tasks[name].batch_fn is not None for name in names)
