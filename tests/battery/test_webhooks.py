"""Outgoing webhooks as an integrator receives them (tests/webhooks/receiver.py, a real HTTP server that
verifies signatures): every request is signed, a captured request replayed later is refused for its stale
timestamp, failures are retried with growing gaps, and every copy of an event carries its one id, so a
receiver that de-duplicates by id processes each event exactly once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.registry import REGISTRY
from patronage.kit.jobs.worker import Worker
from tests.conftest import Tenant
from tests.webhooks.conftest import create_endpoint, emit
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setattr(REGISTRY, "periodic", {})  # only webhook work as the clock moves
    clock.freeze(datetime.now(UTC).replace(microsecond=0))
    server = Receiver(settings.webhook_signature_tolerance_seconds).start()
    yield server
    server.close()


def due_delivery_jobs(db: Database) -> list[Job]:
    with db.unit_of_work(read_only=True) as session:
        return list(session.scalars(select(Job).where(Job.task == "webhooks.deliver",
                                                       Job.status == JobStatus.QUEUED).order_by(Job.run_at)))


def test_signed_retried_with_backoff_replay_proof_and_deduplicable(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = create_endpoint(client, tenant, receiver.url)
    receiver.secret = endpoint["secret"]
    receiver.script = [500, 503]  # down twice, then up
    worker = Worker(db, settings, name="webhooks")
    first = emit(db, tenant.workspace_id, "points.earned", {"customer_id": 1, "points": 10})
    worker.run_once()
    sent_at = clock.utcnow()
    while jobs := due_delivery_jobs(db):  # jump to each retry's due time
        clock.freeze(jobs[0].run_at)
        worker.run_once()
    times = [r.timestamp for r in receiver.received]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 3 and 0 < gaps[0] < gaps[1], times  # retried, backing off, never at once
    second = emit(db, tenant.workspace_id, "points.earned", {"customer_id": 1, "points": 10})
    assert first != second  # the same payload twice is two events, with two ids
    worker.run_once()

    # Redelivered by hand: one more copy of the first event.
    deliveries = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers).json()["items"]
    of_first = next(d for d in deliveries if d["event_id"] == first)
    assert client.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/{of_first['id']}/redeliver",
                       headers=tenant.headers).status_code in (200, 202)
    worker.run_once()

    assert all(r.verdict == "ok" for r in receiver.received), [r.verdict for r in receiver.received]
    ids = [r.headers["patronage-event-id"] for r in receiver.received]
    assert len(ids) >= 4 and set(ids) == {first, second}
    processed = {}
    for request in receiver.received:  # the receiver's de-duplication: by event id
        processed.setdefault(request.headers["patronage-event-id"], request.json)
    assert set(processed) == {first, second}
    assert all(r.json["id"] == r.headers["patronage-event-id"] for r in receiver.received)

    # A request captured on the wire and replayed after the tolerance window is refused; tampering too.
    captured = receiver.received[0]
    clock.freeze(sent_at + timedelta(seconds=settings.webhook_signature_tolerance_seconds + 60))
    receiver.handle(captured.headers, captured.body)
    assert receiver.received[-1].verdict != "ok"
    clock.freeze(sent_at)
    receiver.handle(captured.headers, captured.body.replace(b"10", b"99"))
    assert receiver.received[-1].verdict != "ok"
