from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs import record_event
from patronage.kit.jobs.models import Job
from patronage.kit.jobs.registry import REGISTRY
from patronage.kit.jobs.worker import Worker
from tests.conftest import Tenant
from tests.webhooks.receiver import Receiver


@pytest.fixture(autouse=True)
def _only_webhook_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other domains' periodic tasks would fire as these tests move the clock through a day."""
    monkeypatch.setattr(REGISTRY, "periodic", {})


@pytest.fixture
def now() -> datetime:
    """The clock, frozen at the real time: signatures carry it and the receiver checks it."""
    at = datetime.now(UTC).replace(microsecond=0)
    clock.freeze(at)
    return at


@pytest.fixture
def receiver(settings: Settings) -> Iterator[Receiver]:
    server = Receiver(settings.webhook_signature_tolerance_seconds).start()
    yield server
    server.close()


@pytest.fixture
def worker(db: Database, settings: Settings) -> Worker:
    return Worker(db, settings, name="test-worker")


def create_endpoint(client: TestClient, tenant: Tenant, url: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks", json={"url": url, **fields}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def emit(db: Database, workspace_id: int, event_type: str, payload: dict[str, Any]) -> str:
    """Record a domain event as a domain service would; returns its uid (the webhook event id)."""
    with db.unit_of_work() as session:
        return record_event(session, workspace_id, event_type, payload).uid


def delivery_job(db: Database, delivery_id: int) -> Job:
    with db.unit_of_work(read_only=True) as session:
        jobs = session.scalars(
            select(Job).where(Job.unique_key == f"webhooks.deliver:{delivery_id}").order_by(Job.id.desc())
        ).all()
    assert jobs, f"no delivery job for delivery {delivery_id}"
    return jobs[0]
