"""Deliveries to a real HTTP receiver: signatures, retries on the ~24 h schedule, the log, dead letters."""

from __future__ import annotations

import itertools
import json
import socket
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import JobStatus
from patronage.kit.jobs.worker import Worker
from patronage.webhooks.sender import RESPONSE_BODY_LIMIT
from patronage.webhooks.tasks import MAX_ATTEMPTS, RETRY_DELAYS
from tests.conftest import Tenant
from tests.webhooks.conftest import create_endpoint, delivery_job, emit
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.usefixtures("now")


def _deliveries(client: TestClient, tenant: Tenant, endpoint_id: int, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _detail(client: TestClient, tenant: Tenant, endpoint_id: int, delivery_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_event_is_delivered_signed_and_logged(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker, now: datetime
) -> None:
    endpoint = create_endpoint(client, tenant, receiver.url)
    receiver.secret = endpoint["secret"]
    event_id = emit(db, tenant.workspace_id, "customer.created", {"customer_id": 42, "name": "Zoë"})

    worker.run_once()  # the fan-out job, then the delivery job it enqueued

    (request,) = receiver.received
    assert request.verdict == "ok"  # the receiver verified the signature with the endpoint's secret
    assert request.headers["content-type"] == "application/json"
    assert request.headers["patronage-event-id"] == event_id
    assert request.headers["patronage-event-type"] == "customer.created"
    assert request.timestamp == int(now.timestamp())
    assert request.headers["patronage-signature"].startswith(f"t={request.timestamp},v1=")
    assert request.json == {
        "id": event_id,
        "type": "customer.created",
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "workspace": "acme",
        "data": {"customer_id": 42, "name": "Zoë"},
    }

    (delivery,) = _deliveries(client, tenant, endpoint["id"])
    assert (delivery["event_id"], delivery["status"], delivery["attempts"]) == (event_id, "succeeded", 1)
    assert delivery["last_status_code"] == 200
    detail = _detail(client, tenant, endpoint["id"], delivery["id"])
    assert detail["payload"] == request.json
    (attempt,) = detail["attempt_log"]
    assert (attempt["number"], attempt["status_code"], attempt["error"]) == (1, 200, None)
    assert attempt["response_body"] == '{"received": true}'
    assert attempt["duration_ms"] >= 0


def test_a_failing_receiver_gets_the_same_event_again_until_it_succeeds(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    endpoint = create_endpoint(client, tenant, receiver.url)
    receiver.secret = endpoint["secret"]
    receiver.script = [500, 503]
    event_id = emit(db, tenant.workspace_id, "order.created", {"order_id": 7})

    worker.run_once()
    assert [r.verdict for r in receiver.received] == ["ok"]
    (delivery,) = _deliveries(client, tenant, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("pending", 1, 500)

    clock.advance(timedelta(seconds=RETRY_DELAYS[0] * 0.8))
    worker.run_once()
    assert len(receiver.received) == 1  # the first retry is not due yet
    clock.advance(timedelta(seconds=RETRY_DELAYS[0] * 0.4))
    worker.run_once()
    clock.advance(timedelta(seconds=RETRY_DELAYS[1] * 1.2))
    worker.run_once()

    assert len(receiver.received) == 3
    assert all(r.verdict == "ok" for r in receiver.received)  # each retry is signed afresh...
    assert len({r.timestamp for r in receiver.received}) == 3
    assert {r.headers["patronage-event-id"] for r in receiver.received} == {event_id}  # ...same event id
    assert len({r.body for r in receiver.received}) == 1  # and the same bytes
    detail = _detail(client, tenant, endpoint["id"], delivery["id"])
    assert [(a["number"], a["status_code"]) for a in detail["attempt_log"]] == [(1, 500), (2, 503), (3, 200)]
    assert (detail["status"], detail["attempts"]) == ("succeeded", 3)
    assert delivery_job(db, delivery["id"]).status == JobStatus.SUCCEEDED


def test_retries_follow_the_schedule_for_a_day_then_the_delivery_is_dead(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    endpoint = create_endpoint(client, tenant, receiver.url)
    receiver.secret = endpoint["secret"]
    receiver.status = 500
    event_id = emit(db, tenant.workspace_id, "order.created", {"order_id": 8})
    worker.run_once()
    (delivery,) = _deliveries(client, tenant, endpoint["id"])

    for _ in range(MAX_ATTEMPTS + 2):  # jump straight to each retry's due time
        job = delivery_job(db, delivery["id"])
        if job.status != JobStatus.QUEUED:
            break
        clock.freeze(job.run_at)
        worker.run_once()

    assert len(receiver.received) == MAX_ATTEMPTS
    assert {r.headers["patronage-event-id"] for r in receiver.received} == {event_id}
    assert all(r.verdict == "ok" for r in receiver.received)
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(receiver.received)]
    for gap, planned in zip(gaps, RETRY_DELAYS, strict=True):
        assert planned * 0.9 - 1 <= gap <= planned * 1.1 + 1  # +-10% jitter, whole seconds
    assert timedelta(hours=21) < timedelta(seconds=sum(gaps)) < timedelta(hours=26)

    job = delivery_job(db, delivery["id"])
    assert (job.status, job.attempts) == (JobStatus.DEAD, MAX_ATTEMPTS)
    assert job.last_error is not None and "receiver answered HTTP 500" in job.last_error
    detail = _detail(client, tenant, endpoint["id"], delivery["id"])
    assert (detail["status"], detail["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert [a["status_code"] for a in detail["attempt_log"]] == [500] * MAX_ATTEMPTS
    assert [a["number"] for a in detail["attempt_log"]] == list(range(1, MAX_ATTEMPTS + 1))

    # Redelivery after the receiver is fixed: a fresh job, the same event id.
    receiver.status = 200
    response = client.post(
        f"/api/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/redeliver", headers=tenant.headers
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    worker.run_once()
    assert receiver.received[-1].headers["patronage-event-id"] == event_id
    assert _detail(client, tenant, endpoint["id"], delivery["id"])["status"] == "succeeded"


def test_unreachable_receiver_is_logged_without_status_and_retried(
    client: TestClient, db: Database, tenant: Tenant, worker: Worker
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = create_endpoint(client, tenant, f"http://127.0.0.1:{port}/hook")
    emit(db, tenant.workspace_id, "order.created", {})
    worker.run_once()
    (delivery,) = _deliveries(client, tenant, endpoint["id"])
    (attempt,) = _detail(client, tenant, endpoint["id"], delivery["id"])["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("ConnectError")
    assert delivery["status"] == "pending"
    assert delivery_job(db, delivery["id"]).status == JobStatus.QUEUED


def test_long_responses_are_truncated_in_the_log(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    receiver.response_body = b"x" * (RESPONSE_BODY_LIMIT * 3)
    endpoint = create_endpoint(client, tenant, receiver.url)
    emit(db, tenant.workspace_id, "order.created", {})
    worker.run_once()
    (delivery,) = _deliveries(client, tenant, endpoint["id"])
    (attempt,) = _detail(client, tenant, endpoint["id"], delivery["id"])["attempt_log"]
    assert attempt["response_body"] == "x" * RESPONSE_BODY_LIMIT


def test_only_subscribed_active_endpoints_receive_an_event(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    orders = create_endpoint(client, tenant, receiver.url + "?orders", event_types=["order.*"])
    customers = create_endpoint(client, tenant, receiver.url + "?customers", event_types=["customer.created"])
    everything = create_endpoint(client, tenant, receiver.url + "?all")
    create_endpoint(client, tenant, receiver.url + "?off", active=False)
    emit(db, tenant.workspace_id, "order.paid", {})
    emit(db, tenant.workspace_id, "customer.updated", {})
    worker.run_once()

    got = sorted((r.headers["patronage-event-type"], r.json["type"]) for r in receiver.received)
    assert got == [("customer.updated", "customer.updated"), ("order.paid", "order.paid"), ("order.paid", "order.paid")]
    assert [d["event_type"] for d in _deliveries(client, tenant, orders["id"])] == ["order.paid"]
    assert _deliveries(client, tenant, customers["id"]) == []
    everything_got = {d["event_type"] for d in _deliveries(client, tenant, everything["id"])}
    assert everything_got == {"order.paid", "customer.updated"}


def test_test_event_goes_to_that_endpoint_only(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    target = create_endpoint(client, tenant, receiver.url + "?target", event_types=["order.created"])
    create_endpoint(client, tenant, receiver.url + "?bystander")  # subscribed to "*"
    receiver.secret = target["secret"]
    response = client.post(f"/api/v1/webhooks/{target['id']}/test", headers=tenant.headers)
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    worker.run_once()

    (request,) = receiver.received
    assert request.verdict == "ok"
    assert (request.headers["patronage-event-id"], request.json["type"]) == (event_id, "webhook.test")
    assert request.json["data"]["endpoint_id"] == target["id"]


def test_a_disabled_endpoint_gets_no_test_and_pending_deliveries_stop(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    endpoint = create_endpoint(client, tenant, receiver.url)
    receiver.status = 500
    emit(db, tenant.workspace_id, "order.created", {})
    worker.run_once()
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", json={"active": False}, headers=tenant.headers)
    clock.advance(timedelta(hours=1))
    worker.run_once()

    assert len(receiver.received) == 1
    (delivery,) = _deliveries(client, tenant, endpoint["id"])
    detail = _detail(client, tenant, endpoint["id"], delivery["id"])
    assert detail["status"] == "failed"
    assert detail["attempt_log"][-1]["error"] == "not sent: the endpoint is disabled"
    for path in ("test", f"deliveries/{delivery['id']}/redeliver"):
        response = client.post(f"/api/v1/webhooks/{endpoint['id']}/{path}", headers=tenant.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "webhook_endpoint_disabled"


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    endpoint = create_endpoint(client, tenant, receiver.url)
    old = endpoint["secret"]
    rotated = client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", headers=tenant.headers)
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert rotated.json()["previous_secret_expires_at"] is not None

    for secret in (old, new):  # receivers still on the old secret keep working during the switch
        receiver.secret = secret
        emit(db, tenant.workspace_id, "order.created", {})
        worker.run_once()
        assert receiver.received[-1].verdict == "ok"
    assert receiver.received[-1].headers["patronage-signature"].count("v1=") == 2

    client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", json={"previous_secret_hours": 0},
                headers=tenant.headers)
    receiver.secret = new  # rotated out at once: only the newest secret signs now
    emit(db, tenant.workspace_id, "order.created", {})
    worker.run_once()
    assert receiver.received[-1].verdict == "no signature matches the secret"
    assert receiver.received[-1].headers["patronage-signature"].count("v1=") == 1


def test_the_delivery_log_pages_newest_first(
    client: TestClient, db: Database, tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    endpoint = create_endpoint(client, tenant, receiver.url)
    receiver.script = [500]
    uids = [emit(db, tenant.workspace_id, "order.created", {"n": n}) for n in range(3)]
    worker.run_once()
    page = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", params={"limit": 2},
                      headers=tenant.headers).json()
    rest = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries",
                      params={"limit": 2, "cursor": page["next_cursor"]}, headers=tenant.headers).json()
    assert [d["event_id"] for d in page["items"] + rest["items"]] == uids[::-1]
    assert rest["next_cursor"] is None
    (failed,) = _deliveries(client, tenant, endpoint["id"], status="pending")
    assert json.loads(receiver.received[0].body)["id"] == failed["event_id"]
