"""The webhook endpoints API: CRUD, validation, permissions and workspace isolation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker
from patronage.workspaces import service as workspaces
from tests.conftest import Tenant
from tests.webhooks.conftest import create_endpoint, emit
from tests.webhooks.receiver import Receiver

URL = "https://hooks.example.com/patronage"


def test_create_list_update_delete(client: TestClient, tenant: Tenant) -> None:
    created = create_endpoint(client, tenant, URL, description="CRM sync", event_types=["order.*", "order.*"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert (created["event_types"], created["active"]) == (["order.*"], True)

    listed = client.get("/api/v1/webhooks", headers=tenant.headers).json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]  # shown on creation and rotation only
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}", headers=tenant.headers).json()

    updated = client.patch(
        f"/api/v1/webhooks/{created['id']}", json={"event_types": ["*"], "active": False}, headers=tenant.headers
    )
    assert updated.status_code == 200
    assert (updated.json()["event_types"], updated.json()["active"]) == (["*"], False)
    assert updated.json()["description"] == "CRM sync"  # untouched

    assert client.delete(f"/api/v1/webhooks/{created['id']}", headers=tenant.headers).status_code == 204
    gone = client.get(f"/api/v1/webhooks/{created['id']}", headers=tenant.headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "webhook_endpoint_not_found"


INVALID = [
    ({"url": "ftp://example.com/hook"}, "url"),
    ({"url": "example.com/hook"}, "url"),
    ({"url": "https:///nohost"}, "url"),
    ({"url": "https://example.com:99999/x"}, "url"),
    ({"url": "https://exa mple.com/x"}, "url"),
    ({"url": URL, "event_types": []}, "event_types"),
    ({"url": URL, "event_types": ["Order Created"]}, "event_types"),
    ({"url": URL, "surprise": True}, "surprise"),
]


def test_invalid_endpoints_are_422_naming_the_field(client: TestClient, tenant: Tenant) -> None:
    for body, field in INVALID:
        response = client.post("/api/v1/webhooks", json=body, headers=tenant.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text, body
    assert client.get("/api/v1/webhooks", headers=tenant.headers).json() == []


def test_managing_webhooks_needs_the_permission(client: TestClient, db: Database, tenant: Tenant) -> None:
    with db.unit_of_work() as session:
        _, secret = workspaces.create_api_key(
            session, tenant.workspace_id, name="shop", scopes=["customers:read"], actor="test",
            actor_permissions=frozenset({"customers:read"}), created_by_user_id=None,
        )
    response = client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 403
    assert "webhooks:manage" in response.json()["detail"]


def test_another_workspaces_endpoints_and_deliveries_are_404(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, receiver: Receiver, worker: Worker
) -> None:
    theirs = create_endpoint(client, other_tenant, receiver.url)
    emit(db, other_tenant.workspace_id, "order.created", {})
    worker.run_once()
    (delivery,) = client.get(
        f"/api/v1/webhooks/{theirs['id']}/deliveries", headers=other_tenant.headers
    ).json()["items"]
    base = f"/api/v1/webhooks/{theirs['id']}"

    assert client.get("/api/v1/webhooks", headers=tenant.headers).json() == []
    for method, path in [
        ("GET", base), ("PATCH", base), ("DELETE", base), ("POST", f"{base}/rotate-secret"),
        ("POST", f"{base}/test"), ("GET", f"{base}/deliveries"), ("GET", f"{base}/deliveries/{delivery['id']}"),
        ("POST", f"{base}/deliveries/{delivery['id']}/redeliver"),
    ]:
        response = client.request(method, path, json={} if method == "PATCH" else None, headers=tenant.headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "webhook_endpoint_not_found"

    # Their delivery id under our own endpoint is not found either.
    ours = create_endpoint(client, tenant, receiver.url)
    response = client.get(f"/api/v1/webhooks/{ours['id']}/deliveries/{delivery['id']}", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "webhook_delivery_not_found"

    # Our events never reach their endpoint.
    emit(db, tenant.workspace_id, "order.created", {})
    worker.run_once()
    assert len(receiver.received) == 2
    assert client.get(f"{base}/deliveries", headers=other_tenant.headers).json()["items"] == [delivery]


def test_create_is_idempotent_with_a_key(client: TestClient, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "create-hook-1"}
    first = client.post("/api/v1/webhooks", json={"url": URL}, headers=headers)
    second = client.post("/api/v1/webhooks", json={"url": URL}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == {**first.json(), "secret": None}  # a replay never repeats the secret
    assert len(client.get("/api/v1/webhooks", headers=tenant.headers).json()) == 1
