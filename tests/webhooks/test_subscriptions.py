"""Events that no endpoint subscribes to get no fan-out job: the subscriptions are looked up (and cached)
when the event is recorded, and every change to an endpoint is seen at once in this process."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from patronage.kit.db import Database
from patronage.kit.jobs.models import Job
from patronage.webhooks import subscriptions
from patronage.webhooks.models import WebhookEndpoint
from patronage.webhooks.schemas import EndpointCreate
from patronage.webhooks.service import create_endpoint as create_in_service
from tests.conftest import Tenant
from tests.webhooks.conftest import create_endpoint, emit

URL = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    subscriptions.CACHE.clear()


def fan_outs(db: Database) -> list[str]:
    """The event types that got a fan-out job, in order."""
    with db.unit_of_work(read_only=True) as session:
        payloads = session.scalars(select(Job.payload).where(Job.task == "webhooks.fan_out").order_by(Job.id))
        return [p["type"] for p in payloads]


def test_no_endpoint_no_fan_out_job(db: Database, tenant: Tenant) -> None:
    emit(db, tenant.workspace_id, "order.created", {})
    assert fan_outs(db) == []


def test_only_subscribed_types_get_a_fan_out_and_changes_show_at_once(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    emit(db, tenant.workspace_id, "order.created", {})  # caches "no endpoint"
    endpoint = create_endpoint(client, tenant, URL, event_types=["order.*"])
    emit(db, tenant.workspace_id, "order.created", {})
    emit(db, tenant.workspace_id, "customer.created", {})
    assert fan_outs(db) == ["order.created"]

    path = f"/api/v1/webhooks/{endpoint['id']}"
    assert client.patch(path, json={"event_types": ["customer.*"]}, headers=tenant.headers).status_code == 200
    emit(db, tenant.workspace_id, "order.created", {})
    emit(db, tenant.workspace_id, "customer.created", {})
    assert fan_outs(db) == ["order.created", "customer.created"]

    assert client.patch(path, json={"active": False}, headers=tenant.headers).status_code == 200
    emit(db, tenant.workspace_id, "customer.created", {})
    assert client.delete(path, headers=tenant.headers).status_code in (200, 204)
    emit(db, tenant.workspace_id, "customer.created", {})
    assert fan_outs(db) == ["order.created", "customer.created"]


def test_a_test_event_always_fans_out(client: TestClient, db: Database, tenant: Tenant) -> None:
    endpoint = create_endpoint(client, tenant, URL, event_types=["order.created"])
    response = client.post(f"/api/v1/webhooks/{endpoint['id']}/test", headers=tenant.headers)
    assert response.status_code == 202
    assert fan_outs(db) == ["webhook.test"]


def test_a_look_up_made_before_the_commit_is_dropped_by_it(db: Database, tenant: Tenant) -> None:
    """Another request of this process reading while the endpoint's transaction is still open caches the
    old answer; the commit drops it, so the next event is fanned out."""
    with db.unit_of_work() as writing:
        create_in_service(writing, tenant.workspace_id, EndpointCreate(url=URL), actor="test")
        with db.unit_of_work(read_only=True) as reading:
            assert not subscriptions.wants(reading, tenant.workspace_id, "order.created")  # not committed yet
    emit(db, tenant.workspace_id, "order.created", {})
    assert fan_outs(db) == ["order.created"]


def test_a_change_made_by_another_process_shows_within_the_cache_time(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = create_endpoint(client, tenant, URL, event_types=["order.*"])
    emit(db, tenant.workspace_id, "customer.created", {})  # caches ["order.*"]
    with db.unit_of_work() as session:  # as another process would: no cache of ours is told
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint["id"])
                        .values(event_types=["*"]))
    emit(db, tenant.workspace_id, "customer.created", {})
    assert fan_outs(db) == []  # within the documented window the old subscriptions still apply
    now = subscriptions.clock()
    monkeypatch.setattr(subscriptions, "clock", lambda: now + subscriptions.CACHE_SECONDS + 0.1)
    emit(db, tenant.workspace_id, "customer.created", {})
    assert fan_outs(db) == ["customer.created"]
