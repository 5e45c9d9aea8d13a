"""Relays run inside record_event; their debounced enqueues wait for the commit and go in one lock order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.kit.db import Database
from patronage.kit.jobs import enqueue_debounced_at_commit, record_event
from patronage.kit.jobs.deferred import pending_keys
from patronage.kit.jobs.models import Job
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.jobs.registry import REGISTRY, relay
from tests.conftest import Tenant
from tests.kit.jobs import sample_tasks  # noqa: F401  (registers test.record and test.batched)

SEEN: list[tuple[int, str, dict[str, Any]]] = []


def _relay(session: Session, workspace_id: int, event_type: str, payload: dict[str, Any]) -> None:
    SEEN.append((workspace_id, event_type, payload))
    task = "test.batched" if payload.get("batched") else "test.record"
    enqueue_debounced_at_commit(session, task, f"relay-test:{payload['n']}", {"n": payload["n"]},
                                workspace_id=workspace_id, debounce=timedelta(seconds=5))


@pytest.fixture
def relayed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(REGISTRY, "relays", {})
    relay("test.relayed")(_relay)
    relay("test.relayed")(_relay)  # registering twice keeps one
    SEEN.clear()
    yield


def test_relays_run_in_record_event_and_enqueue_at_commit(db: Database, tenant: Tenant, relayed: None) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as session:
        record_event(session, ws, "test.relayed", {"n": 2})
        record_events_bulk(session, ws, [("test.relayed", {"n": 10, "batched": True}), ("test.other", {"n": 3}),
                                         ("test.relayed", {"n": 1})])
        assert [(t, p["n"]) for _, t, p in SEEN] == [("test.relayed", 2), ("test.relayed", 10), ("test.relayed", 1)]
        # Task by task (then workspace), keys sorted within each: one global lock order.
        assert pending_keys(session) == ["relay-test:10", "relay-test:1", "relay-test:2"]
        assert not session.scalars(select(Job.id).where(Job.unique_key.like("relay-test:%"))).all()
        assert not session.scalars(select(Job.id).where(Job.task == "test.relayed")).all()  # no job rows
    with db.unit_of_work(read_only=True) as session:
        jobs = session.execute(select(Job.task, Job.unique_key, Job.payload, Job.status).where(
            Job.unique_key.like("relay-test:%")).order_by(Job.unique_key)).all()
    assert [tuple(job) for job in jobs] == [("test.record", "relay-test:1", {"n": 1}, "queued"),
                                            ("test.batched", "relay-test:10", {"n": 10}, "queued"),
                                            ("test.record", "relay-test:2", {"n": 2}, "queued")]


def test_a_rolled_back_transaction_enqueues_nothing(db: Database, tenant: Tenant, relayed: None) -> None:
    session = db.sessions()
    try:
        record_event(session, tenant.workspace_id, "test.relayed", {"n": 7})
        assert pending_keys(session) == ["relay-test:7"]
        session.rollback()
        assert pending_keys(session) == []
        session.commit()  # the next transaction has nothing pending
    finally:
        session.close()
    with db.unit_of_work(read_only=True) as session:
        assert not session.scalars(select(Job.id).where(Job.unique_key.like("relay-test:%"))).all()
