"""Identities and merging duplicate profiles over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.customers.merge import register_merge_handler
from patronage.kit.audit import AuditEntry
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent
from tests.conftest import Tenant
from tests.customers.conftest import API, add_event, add_order, add_return, create_customer


def test_identities_add_remove_and_conflicts(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    h = tenant.headers
    ann = create_customer(client, tenant, external_id="ann", email="ann@example.com")
    bob = create_customer(client, tenant, external_id="bob", email="bob@example.com")
    url = f"{API}/customers/{ann['id']}/identities"

    device = client.post(url, json={"kind": "device_id", "value": "iphone-1"}, headers=h)
    assert device.status_code == 201, device.text
    assert client.post(url, json={"kind": "device_id", "value": "iphone-1"}, headers=h).status_code == 200
    work = client.post(url, json={"kind": "email", "value": "Ann@Work.Example"}, headers=h)
    assert work.json()["value"] == "ann@work.example"
    phone = client.post(url, json={"kind": "phone", "value": "+1 (201) 555-0123"}, headers=h)
    assert phone.json()["value"] == "+12015550123"

    taken = client.post(url, json={"kind": "email", "value": "bob@example.com"}, headers=h)
    assert taken.status_code == 409
    assert taken.json()["code"] == "identity_taken"
    assert taken.json()["errors"][0]["field"] == "value"
    bad = client.post(url, json={"kind": "email", "value": "nope"}, headers=h)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "value")
    bad_kind = client.post(url, json={"kind": "passport", "value": "x"}, headers=h)
    assert bad_kind.json()["errors"][0]["field"] == "kind"

    # A secondary email identifies the customer on upsert too (and, sent as the email, becomes primary).
    again = client.post(f"{API}/customers", json={"email": "ann@work.example", "last_name": "Lee"}, headers=h)
    assert (again.json()["id"], again.json()["email"]) == (ann["id"], "ann@work.example")

    identities = {i["value"]: i["id"] for i in client.get(url, headers=h).json()}
    assert client.delete(f"{url}/{identities['iphone-1']}", headers=h).status_code == 204
    own = client.delete(f"{url}/{identities['ann@work.example']}", headers=h)
    assert own.status_code == 409  # the profile's own email: change the profile instead
    assert client.delete(f"{url}/{identities['ann@example.com']}", headers=h).status_code == 204
    bob_ids = client.get(f"{API}/customers/{bob['id']}/identities", headers=h).json()
    assert client.delete(f"{url}/{bob_ids[0]['id']}", headers=h).status_code == 404
    assert client.post(url, json={"kind": "device_id", "value": "x"}, headers=other_tenant.headers).status_code == 404
    assert sorted(client.get(url, headers=h).json(), key=lambda i: i["id"])[0]["kind"] == "external_id"


def test_merge_moves_everything_to_the_survivor(client: TestClient, tenant: Tenant, db: Database,
                                                other_tenant: Tenant) -> None:
    h = tenant.headers
    ws = tenant.workspace_id
    calls: list[tuple[int, int, int, str]] = []
    register_merge_handler("test-spy", lambda s, w, f, i, *, actor: calls.append((w, f, i, actor)))
    try:
        survivor = create_customer(client, tenant, external_id="keep", email="keep@example.com", tags=["a"],
                                   signed_up_at="2024-03-01T00:00:00Z")
        duplicate = create_customer(client, tenant, external_id="dupe", email="dupe@example.com",
                                    phone="+44 20 7946 0018", first_name="Dee", tags=["b", "a"],
                                    signed_up_at="2023-01-01T00:00:00Z")
        s_id, d_id = survivor["id"], duplicate["id"]
        add_order(db, ws, s_id, "o-1", "10.00", datetime(2024, 5, 1, tzinfo=UTC))
        order_2 = add_order(db, ws, d_id, "o-2", "20.00", datetime(2024, 3, 1, tzinfo=UTC))
        add_order(db, ws, d_id, "o-3", "30.00", datetime(2024, 6, 1, tzinfo=UTC))
        add_return(db, ws, order_2, "r-1", "5.00", datetime(2024, 3, 5, tzinfo=UTC))
        add_event(db, ws, d_id, "ev-1", "page_view", datetime(2024, 6, 2, tzinfo=UTC))
        consent = {"channel": "sms", "status": "granted", "source": "signup_form"}
        assert client.post(f"{API}/customers/{d_id}/consents", json=consent, headers=h).status_code == 201

        assert _merge(client, tenant, s_id, s_id).status_code == 422
        assert _merge(client, tenant, s_id, 999_999).status_code == 404
        foreign = create_customer(client, other_tenant, external_id="x")
        assert _merge(client, tenant, s_id, foreign["id"]).status_code == 404

        response = _merge(client, tenant, s_id, d_id)
        assert response.status_code == 200, response.text
        body = response.json()
        merged = body["survivor"]
        assert merged["id"] == s_id
        assert (merged["orders_count"], merged["total_spent"]) == (3, "55.0000")
        assert merged["first_order_at"].startswith("2024-03-01")
        assert merged["last_order_at"].startswith("2024-06-01")
        assert merged["phone"] == "+442079460018"  # filled from the duplicate
        assert merged["first_name"] == "Dee"
        assert merged["email"] == "keep@example.com"  # the survivor's own value wins
        assert merged["tags"] == ["a", "b"]
        assert merged["signed_up_at"].startswith("2023-01-01")
        assert body["moved"]["orders"] == 2
        assert body["moved"]["behaviour_events"] == 1
        assert body["moved"]["consent_evidence"] == 1
        assert body["moved"]["customer_identities"] == 3
        assert calls == [(ws, d_id, s_id, "api_key:1")] or calls[0][1:3] == (d_id, s_id)

        gone = client.get(f"{API}/customers/{d_id}", headers=h).json()
        assert (gone["merged_into_id"], gone["orders_count"]) == (s_id, 0)
        assert client.patch(f"{API}/customers/{d_id}", json={"first_name": "X"}, headers=h).json()["code"] == (
            "customer_merged"
        )
        assert _merge(client, tenant, s_id, d_id).status_code == 409
        # The duplicate's identifiers now lead to the survivor.
        upsert = client.post(f"{API}/customers", json={"external_id": "dupe", "last_name": "Doe"}, headers=h)
        assert (upsert.status_code, upsert.json()["id"]) == (200, s_id)
        assert client.post(f"{API}/customers", json={"email": "dupe@example.com"}, headers=h).json()["id"] == s_id
        listed = [c["id"] for c in client.get(f"{API}/customers", headers=h).json()["items"]]
        assert d_id not in listed
        everyone = client.get(f"{API}/customers", params={"include_merged": "true"}, headers=h).json()["items"]
        assert d_id in [c["id"] for c in everyone]

        consents = client.get(f"{API}/customers/{s_id}/consents", headers=h).json()
        assert consents["can_message"]["sms"] is True
        kinds = [i["kind"] for i in client.get(f"{API}/customers/{s_id}/timeline", headers=h).json()["items"]]
        assert kinds.count("order") == 3 and kinds.count("return") == 1 and kinds.count("event") == 1

        with db.unit_of_work(read_only=True) as session:
            actions = session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.workspace_id == ws, AuditEntry.action.like("customer.merge%"))
            ).all()
            assert sorted(actions) == ["customer.merged", "customer.merged_into"]
            event = session.scalars(select(DomainEvent).where(DomainEvent.type == "customer.merged")).one()
            assert event.payload == {"survivor_id": s_id, "duplicate_id": d_id}
    finally:
        from patronage.customers import merge

        merge._HANDLERS.pop("test-spy", None)


def _merge(client: TestClient, tenant: Tenant, survivor: int, duplicate: int):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/customers/{survivor}/merge", json={"duplicate_id": duplicate}, headers=tenant.headers)
