from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from patronage.events.models import BehaviourEvent, Order
from patronage.kit.db import Database
from tests.conftest import Tenant
from tests.events.helpers import count, domain_events, order_body

EVENTS = "/api/v1/events"
TYPES = "/api/v1/event-types"
LEVEL_SCHEMA = {
    "type": "object",
    "properties": {"level": {"type": "integer", "minimum": 1}, "game": {"type": "string"}},
    "required": ["level"],
    "additionalProperties": False,
}


def event(external_id: str = "e-1", type_: str = "page_view", **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "type": type_, "customer_external_id": "c-1",
            "occurred_at": "2024-03-01T10:00:00Z", "properties": {"url": "https://shop.test/"}, **fields}


def test_builtin_events_are_recorded_once_and_checked(client: TestClient, tenant: Tenant, db: Database) -> None:
    first = client.post(EVENTS, json=event(), headers=tenant.headers)
    assert first.status_code == 201, first.text
    assert first.json()["result"]["type"] == "page_view"
    again = client.post(EVENTS, json=event(), headers=tenant.headers)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    other = client.post(EVENTS, json=event(properties={"url": "https://shop.test/b"}), headers=tenant.headers)
    assert other.status_code == 409 and other.json()["code"] == "event_conflict"
    recorded = domain_events(db, "event.recorded")
    assert len(recorded) == 1
    assert recorded[0].payload["type"] == "page_view" and recorded[0].payload["builtin"] is True
    assert "properties" not in recorded[0].payload
    one_form = event("k-1", properties={"url": "https://shop.test/", "title": "Home"})
    assert client.post(EVENTS, json=one_form, headers=tenant.headers).status_code == 201
    other_form = event("k-1", properties={"title": "Home", "url": "https://shop.test/"},
                       occurred_at="2024-03-01T11:00:00+01:00")
    assert client.post(EVENTS, json=other_form, headers=tenant.headers).json()["status"] == "unchanged"

    missing = client.post(EVENTS, json=event("e-0", properties={}), headers=tenant.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "properties.url"
    review = event("e-2", "review_posted", properties={"rating": 9})
    bad = client.post(EVENTS, json=review, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "properties.rating"
    extra = event("e-3", properties={"url": "https://shop.test", "campaign": "spring"})
    assert client.post(EVENTS, json=extra, headers=tenant.headers).status_code == 201
    unknown = client.post(EVENTS, json=event("e-4", "level_up"), headers=tenant.headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "type"
    naive = client.post(EVENTS, json=event("e-5", occurred_at="2024-03-01T10:00:00"), headers=tenant.headers)
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "occurred_at"


def test_custom_event_type_crud_and_validation(client: TestClient, tenant: Tenant, db: Database) -> None:
    created = client.put(f"{TYPES}/level_up", json={"description": "Game level reached",
                                                   "properties_schema": LEVEL_SCHEMA}, headers=tenant.headers)
    assert created.status_code == 201, created.text
    same = client.put(f"{TYPES}/level_up", json={"description": "Game level reached",
                                                "properties_schema": LEVEL_SCHEMA}, headers=tenant.headers)
    assert same.json()["status"] == "unchanged"
    listed = client.get(TYPES, headers=tenant.headers).json()
    assert {"page_view", "review_posted", "level_up"} <= {t["name"] for t in listed}
    assert next(t for t in listed if t["name"] == "level_up")["builtin"] is False

    ok = client.post(EVENTS, json=event("l-1", "level_up", properties={"level": 3}), headers=tenant.headers)
    assert ok.status_code == 201, ok.text
    for props, field in (({"level": 0}, "properties.level"), ({}, "properties.level"),
                         ({"level": "three"}, "properties.level"), ({"level": 2, "boss": 1}, "properties.boss")):
        bad = client.post(EVENTS, json=event("l-2", "level_up", properties=props), headers=tenant.headers)
        assert bad.status_code == 422, props
        assert bad.json()["errors"][0]["field"] == field, (props, bad.json())
    assert domain_events(db, "event.recorded")[0].payload["builtin"] is False

    invalid = client.put(f"{TYPES}/broken", json={"properties_schema": {"type": "object", "required": "level"}},
                         headers=tenant.headers)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"].startswith("properties_schema")
    not_object = client.put(f"{TYPES}/broken", json={"properties_schema": {"type": "string"}}, headers=tenant.headers)
    assert not_object.status_code == 422
    builtin = client.put(f"{TYPES}/page_view", json={"properties_schema": {"type": "object"}}, headers=tenant.headers)
    assert builtin.status_code == 422 and builtin.json()["errors"][0]["field"] == "name"

    assert client.delete(f"{TYPES}/level_up", headers=tenant.headers).status_code == 204
    gone = client.post(EVENTS, json=event("l-3", "level_up", properties={"level": 3}), headers=tenant.headers)
    assert gone.status_code == 422
    assert client.get(f"{EVENTS}/l-1", headers=tenant.headers).status_code == 200  # recorded events stay


def test_batches_report_bad_rows_and_products_fill_lines(client: TestClient, tenant: Tenant, db: Database) -> None:
    items = [event("b-1"), {"type": "page_view"}, event("b-3", properties={}), event("b-1"), event("b-5")]
    response = client.post(f"{EVENTS}/batch", json={"items": items}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (3, 2)
    statuses = [(i["index"], i["status"]) for i in body["items"]]
    assert statuses == [(0, "created"), (1, "error"), (2, "error"), (3, "unchanged"), (4, "created")]
    assert body["items"][2]["error"]["errors"][0]["field"] == "properties.url"
    assert count(db, BehaviourEvent) == 2
    listed = client.get(EVENTS, params={"type": "page_view"}, headers=tenant.headers).json()["items"]
    assert [e["external_id"] for e in listed] == ["b-5", "b-1"]

    items = [order_body("o-1"), order_body("o-2", total="1.00"), {"external_id": "o-3"},
             order_body("o-1"), order_body("o-4", customer_external_id="c-2")]
    response = client.post("/api/v1/orders/batch", json={"items": items}, headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert [i["status"] for i in body["items"]] == ["created", "error", "error", "unchanged", "created"]
    assert body["items"][1]["error"]["errors"][0]["field"] == "total"
    assert {e["field"] for e in body["items"][2]["error"]["errors"]} >= {"placed_at"}
    assert count(db, Order) == 2
    too_big = client.post("/api/v1/orders/batch", json={"items": [order_body()] * 1001}, headers=tenant.headers)
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "items"

    product = {"sku": "TEA-9", "name": "Oolong", "category": "Tea", "price": "12.50", "tags": ["new"]}
    assert client.post("/api/v1/products", json=product, headers=tenant.headers).status_code == 201
    assert client.post("/api/v1/products", json=product, headers=tenant.headers).json()["status"] == "unchanged"
    changed = client.post("/api/v1/products", json={**product, "active": False}, headers=tenant.headers)
    assert changed.json()["status"] == "updated"
    batch = client.post("/api/v1/products/batch", json={"items": [product, {"sku": "X"}]}, headers=tenant.headers)
    assert [i["status"] for i in batch.json()["items"]] == ["updated", "error"]
    assert client.get("/api/v1/products/TEA-9", headers=tenant.headers).json()["category"] == "Tea"
    assert [p["sku"] for p in client.get("/api/v1/products", params={"active": False},
                                         headers=tenant.headers).json()["items"]] == []
    body = order_body("o-9", lines=[{"sku": "TEA-9", "quantity": 1, "unit_price": "12.50"}], total=None)
    line = client.post("/api/v1/orders", json=body, headers=tenant.headers).json()["result"]["lines"][0]
    assert (line["name"], line["category"]) == ("Oolong", "Tea")
