"""Profiles over HTTP: upsert, validation, custom attributes, patch, list/search, batch, idempotency."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from patronage.customers.schemas import CustomerUpsert
from patronage.customers.service import upsert_customer
from patronage.kit.db import Database
from patronage.workspaces import service as ws_service
from patronage.workspaces.permissions import Permission
from tests.conftest import Tenant
from tests.customers.conftest import API, create_customer


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


def test_upsert_is_idempotent_by_external_id_then_email(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    body = {
        "external_id": "shop-1", "email": " Ann.Lee@Example.COM ", "phone": "+49 151 23456789",
        "first_name": "Ann", "last_name": "Lee", "birthday": "1990-04-01", "locale": "de_de",
        "timezone": "Europe/Berlin", "country": "de", "acquisition_source": "instagram",
        "acquisition_channel": "social", "tags": ["vip", "vip", "berlin"], "signed_up_at": "2024-01-02T03:04:05Z",
    }
    created = client.post(f"{API}/customers", json=body, headers=h)
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["email"] == "ann.lee@example.com"
    assert customer["phone"] == "+4915123456789"
    assert (customer["country"], customer["locale"]) == ("DE", "de-DE")
    assert customer["tags"] == ["vip", "berlin"]
    assert customer["lifecycle_stage"] == "prospect"

    again = client.post(f"{API}/customers", json=body, headers=h)
    assert again.status_code == 200
    assert again.headers["Upsert-Result"] == "unchanged"
    assert again.json()["id"] == customer["id"]

    by_email = client.post(f"{API}/customers", json={"email": "ann.lee@example.com", "first_name": "Anna"}, headers=h)
    assert by_email.status_code == 200
    assert by_email.headers["Upsert-Result"] == "updated"
    assert by_email.json()["id"] == customer["id"]
    assert by_email.json()["first_name"] == "Anna"
    assert by_email.json()["last_name"] == "Lee"  # omitted fields stay

    changed = client.post(f"{API}/customers", json={"external_id": "shop-1", "email": "ann@new.example"}, headers=h)
    assert changed.json()["email"] == "ann@new.example"
    identities = client.get(f"{API}/customers/{customer['id']}/identities", headers=h).json()
    assert sorted((i["kind"], i["value"]) for i in identities) == [
        ("email", "ann.lee@example.com"), ("email", "ann@new.example"), ("external_id", "shop-1"),
        ("phone", "+4915123456789"),
    ]
    # The old address stays a (secondary) identity of Ann until it is removed.
    found = client.get(f"{API}/customers", params={"q": "Ann.Lee@example.com"}, headers=h).json()["items"]
    assert [c["id"] for c in found] == [customer["id"]]
    old_identity = next(i for i in identities if i["value"] == "ann.lee@example.com")
    removed = client.delete(f"{API}/customers/{customer['id']}/identities/{old_identity['id']}", headers=h)
    assert removed.status_code == 204
    other = client.post(f"{API}/customers", json={"email": "ann.lee@example.com"}, headers=h)
    assert other.status_code == 201
    assert other.json()["id"] != customer["id"]

    cleared = client.post(f"{API}/customers", json={"external_id": "shop-1", "phone": None, "tags": []}, headers=h)
    assert cleared.json()["phone"] is None
    assert cleared.json()["tags"] == []


def test_bad_input_is_a_422_naming_the_field(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    cases: list[tuple[dict[str, Any], str]] = [
        ({"external_id": "x", "email": "not-an-email"}, "email"),
        ({"external_id": "x", "phone": "+49 12"}, "phone"),
        ({"external_id": "x", "phone": "030 1234567"}, "phone"),  # national number, no country known
        ({"external_id": "x", "country": "XX"}, "country"),
        ({"external_id": "x", "timezone": "Mars/Base"}, "timezone"),
        ({"external_id": "x", "locale": "klingon!"}, "locale"),
        ({"external_id": "x", "birthday": "2999-01-01"}, "birthday"),
        ({"external_id": "x", "signed_up_at": "2024-01-01T00:00:00"}, "signed_up_at"),
        ({"external_id": "x", "nickname": "x"}, "nickname"),
        ({"external_id": "x", "tags": ["t"] * 51}, "tags"),
        ({"external_id": ""}, "external_id"),
        ({"first_name": "Nobody"}, "external_id"),
        ({"external_id": "x", "attributes": {"colour": "red"}}, "attributes.colour"),
    ]
    for body, field in cases:
        assert field in _fields(client.post(f"{API}/customers", json=body, headers=h)), body
    assert client.get(f"{API}/customers", headers=h).json()["items"] == []


def test_custom_attribute_definitions_and_validation(client: TestClient, tenant: Tenant, db: Database) -> None:
    h = tenant.headers
    url = f"{API}/customer-attributes"
    plan = client.post(url, json={"name": "plan", "type": "enum", "allowed_values": ["free", "pro"]}, headers=h)
    assert plan.status_code == 201, plan.text
    assert client.post(url, json={"name": "score", "type": "number"}, headers=h).status_code == 201
    assert client.post(url, json={"name": "since", "type": "date"}, headers=h).status_code == 201
    store = {"name": "store", "type": "string", "required": True, "description": "home store"}
    assert client.post(url, json=store, headers=h).status_code == 201
    assert client.post(url, json={"name": "plan", "type": "string"}, headers=h).status_code == 409
    assert _fields(client.post(url, json={"name": "Bad Name", "type": "string"}, headers=h)) == ["name"]
    assert _fields(client.post(url, json={"name": "tier", "type": "enum"}, headers=h)) == ["allowed_values"]
    assert _fields(client.post(url, json={"name": "tier", "type": "colour"}, headers=h)) == ["type"]
    assert [d["name"] for d in client.get(url, headers=h).json()] == ["plan", "score", "since", "store"]

    def upsert(attributes: dict[str, Any]) -> Any:
        return client.post(f"{API}/customers", json={"external_id": "a1", "attributes": attributes}, headers=h)

    assert _fields(upsert({"plan": "pro"})) == ["attributes.store"]  # required on create
    with db.unit_of_work() as session:  # ingestion (orders, events) is never refused for it
        outcome, _ = upsert_customer(session, tenant.workspace_id, CustomerUpsert(external_id="o-1"), actor="test")
        assert outcome == "created"
    assert _fields(upsert({"store": "x", "plan": "gold"})) == ["attributes.plan"]
    assert set(_fields(upsert({"store": "x", "score": "high", "since": "soon"}))) == {
        "attributes.score", "attributes.since",
    }
    ok = upsert({"store": "berlin", "plan": "pro", "score": 7})
    assert ok.status_code == 201
    assert ok.json()["attributes"] == {"store": "berlin", "plan": "pro", "score": 7}
    merged = upsert({"score": None, "since": "2024-05-01"})
    assert merged.json()["attributes"] == {"store": "berlin", "plan": "pro", "since": "2024-05-01"}
    assert _fields(upsert({"store": None})) == ["attributes.store"]

    patched = client.patch(f"{url}/plan", json={"allowed_values": ["free", "pro", "gold"]}, headers=h)
    assert patched.json()["allowed_values"] == ["free", "pro", "gold"]
    assert upsert({"plan": "gold"}).status_code == 200
    assert client.get(f"{url}/plan", headers=h).json()["type"] == "enum"
    assert client.delete(f"{url}/score", headers=h).status_code == 204
    assert client.get(f"{url}/score", headers=h).status_code == 404
    assert _fields(upsert({"score": 1})) == ["attributes.score"]


def test_phone_region_comes_from_customer_then_workspace(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    german = create_customer(client, tenant, external_id="de", country="DE", phone="0151 23456789")
    assert german["phone"] == "+4915123456789"
    settings = client.patch(f"{API}/customer-settings", json={"default_country": "us"}, headers=h)
    assert settings.status_code == 200, settings.text
    american = create_customer(client, tenant, external_id="us", phone="(201) 555-0123")
    assert american["phone"] == "+12015550123"
    assert _fields(client.patch(f"{API}/customer-settings", json={"default_country": "ZZ"}, headers=h)) == [
        "default_country"
    ]


def test_get_patch_and_other_workspaces(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    h = tenant.headers
    customer = create_customer(client, tenant, external_id="p1", email="p1@example.com")
    url = f"{API}/customers/{customer['id']}"
    changes = {"first_name": "Pat", "birthday": "1985-12-24", "external_id": "p1-new"}
    patched = client.patch(url, json=changes, headers=h)
    assert patched.status_code == 200, patched.text
    assert patched.json()["first_name"] == "Pat"
    assert client.get(url, headers=h).json()["external_id"] == "p1-new"
    assert client.post(f"{API}/customers", json={"external_id": "p1-new"}, headers=h).json()["id"] == customer["id"]
    assert _fields(client.patch(url, json={"email": "nope"}, headers=h)) == ["email"]
    assert client.get(f"{API}/customers/999999", headers=h).status_code == 404

    foreign = other_tenant.headers
    assert client.get(url, headers=foreign).status_code == 404
    assert client.patch(url, json={"first_name": "X"}, headers=foreign).status_code == 404
    assert client.get(f"{url}/identities", headers=foreign).status_code == 404
    assert client.get(f"{url}/timeline", headers=foreign).status_code == 404
    assert client.get(f"{url}/consents", headers=foreign).status_code == 404
    assert client.get(f"{url}/export", headers=foreign).status_code == 404
    assert client.post(f"{url}/erase", headers=foreign).status_code == 404
    assert client.get(f"{API}/customers", headers=foreign).json()["items"] == []
    # The same external id in another workspace is another customer.
    assert client.post(f"{API}/customers", json={"external_id": "p1-new"}, headers=foreign).status_code == 201


def test_list_search_filters_and_pagination(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    people = [
        ("e1", "zoe@alpha.example", "Zoe", "Adams", ["vip"]),
        ("e2", "max@beta.example", "Max", "Müller", ["vip", "b2b"]),
        ("e3", "li@gamma.example", "Li", "Wei", []),
        ("e4", "ana_x@alpha.example", "Ana", "Diaz", ["b2b"]),
        ("e5", "bo@delta.example", "Bo", "Zoe", []),
    ]
    ids = {}
    for ext, email, first, last, tags in people:
        ids[ext] = create_customer(client, tenant, external_id=ext, email=email, first_name=first,
                                   last_name=last, tags=tags)["id"]
    client.post(f"{API}/customers/{ids['e3']}/identities", json={"kind": "device_id", "value": "dev-42"}, headers=h)

    def search(**params: Any) -> list[str]:
        response = client.get(f"{API}/customers", params=params, headers=h)
        assert response.status_code == 200, response.text
        return sorted(c["external_id"] for c in response.json()["items"])

    assert search(q="alpha") == ["e1", "e4"]
    assert search(q="ZOE") == ["e1", "e5"]  # first name and last name
    assert search(q="zoe adams") == ["e1"]
    assert search(q="e2") == ["e2"]
    assert search(q="dev-42") == ["e3"]  # any identity
    assert search(q="ana_") == ["e4"]  # LIKE wildcards are literal
    assert search(q="%") == []
    assert search(tag="vip") == ["e1", "e2"]
    assert search(tag="b2b", q="alpha") == ["e4"]
    assert search(stage="prospect") == ["e1", "e2", "e3", "e4", "e5"]
    assert search(stage="loyal") == []
    assert "query.stage" in _fields(client.get(f"{API}/customers", params={"stage": "vip"}, headers=h))

    seen: list[int] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/customers", params=params, headers=h).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids.values(), reverse=True)
    assert _fields(client.get(f"{API}/customers", params={"cursor": "garbage!"}, headers=h)) == ["cursor"]


def test_batch_upsert_reports_the_bad_item_by_index(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    create_customer(client, tenant, external_id="owner", email="taken@example.com")
    items = [
        {"external_id": "b1", "email": "b1@example.com"},
        {"external_id": "b2", "email": "broken"},
        {"external_id": "b3", "email": "taken@example.com"},
        {"external_id": "b4", "phone": "+44 20 7946 0018"},
        {"external_id": "owner", "first_name": "Owner"},
        {"external_id": "b5", "shoe_size": 44},
    ]
    response = client.post(f"{API}/customers/batch", json={"items": items}, headers=h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (3, 3)
    by_index = {i["index"]: i for i in body["items"]}
    assert [by_index[i]["status"] for i in range(6)] == ["created", "error", "error", "created", "updated", "error"]
    assert by_index[1]["error"]["errors"][0]["field"] == "email"
    assert by_index[2]["error"]["code"] == "identity_taken"
    assert by_index[2]["error"]["errors"][0]["field"] == "email"
    assert by_index[5]["error"]["errors"][0]["field"] == "shoe_size"
    stored = sorted(c["external_id"] for c in client.get(f"{API}/customers", headers=h).json()["items"])
    assert stored == ["b1", "b4", "owner"]

    too_many = {"items": [{"external_id": f"x{i}"} for i in range(1001)]}
    assert _fields(client.post(f"{API}/customers/batch", json=too_many, headers=h)) == ["items"]
    assert _fields(client.post(f"{API}/customers/batch", json={"items": []}, headers=h)) == ["items"]


def test_identity_conflicts_permissions_and_idempotency_keys(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    create_customer(client, tenant, external_id="mine", email="mine@example.com")
    taken = client.post(f"{API}/customers", json={"external_id": "thief", "email": "mine@example.com"},
                        headers=tenant.headers)
    assert taken.status_code == 409
    assert taken.json()["code"] == "identity_taken"
    assert taken.json()["errors"][0]["field"] == "email"

    with db.unit_of_work() as session:
        _, secret = ws_service.create_api_key(
            session, tenant.workspace_id, name="reader", scopes=[Permission.CUSTOMERS_READ.value],
            actor="test", actor_permissions=frozenset(p.value for p in Permission),
            created_by_user_id=tenant.owner_id,
        )
    reader = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"{API}/customers", headers=reader).status_code == 200
    assert client.post(f"{API}/customers", json={"external_id": "r"}, headers=reader).status_code == 403
    mine = client.get(f"{API}/customers", headers=reader).json()["items"][0]["id"]
    assert client.post(f"{API}/customers/{mine}/erase", headers=reader).status_code == 403
    assert client.patch(f"{API}/customer-settings", json={}, headers=reader).status_code == 403

    h = {**tenant.headers, "Idempotency-Key": "k-1"}
    first = client.post(f"{API}/customers", json={"external_id": "i1"}, headers=h)
    assert client.post(f"{API}/customers", json={"external_id": "i2"}, headers=h).status_code == 409
    replay = client.post(f"{API}/customers", json={"external_id": "i1"}, headers=h)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers.get("Idempotent-Replayed") == "true"
