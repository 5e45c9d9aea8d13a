from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from patronage.events.models import Order, OrderLine, OrderStatusChange
from patronage.kit.db import Database
from tests.conftest import Tenant, make_tenant
from tests.events.helpers import count, customer, domain_events, order_body

URL = "/api/v1/orders"


def test_same_order_twice_is_one_order_and_one_event_then_updates(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    first = client.post(URL, json=order_body(), headers=tenant.headers)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "created"
    body = first.json()["result"]
    assert Decimal(body["total"]) == Decimal("34.90")
    assert Decimal(body["subtotal"]) == Decimal("30.00")
    assert body["currency"] == "EUR"  # the workspace's
    assert body["placed_at"].startswith("2024-03-01T09:00:00")
    assert [line["sku"] for line in body["lines"]] == ["TEA-1", "MUG-1"]

    again = client.post(URL, json=order_body(), headers=tenant.headers)
    assert again.status_code == 200
    assert again.json()["status"] == "unchanged"
    assert count(db, Order) == 1
    assert count(db, OrderLine) == 2
    c = customer(db, "c-1")
    assert (c.orders_count, c.total_spent) == (1, Decimal("34.90"))
    assert c.first_order_at is not None and c.first_order_at.isoformat().startswith("2024-03-01T09:00")
    recorded = domain_events(db, "order.recorded")
    assert len(recorded) == 1
    payload = recorded[0].payload
    assert payload["order_id"] == body["id"] and payload["external_id"] == "1001"
    assert Decimal(payload["total"]) == Decimal("34.90") and payload["currency"] == "EUR"
    assert payload["channel"] == "web" and payload["customer_id"] == c.id
    assert payload["placed_at"].startswith("2024-03-01T09:00:00")

    other_form = order_body(total="34.9", placed_at="2024-03-01T09:00:00Z")
    response = client.post(URL, json=other_form, headers=tenant.headers)
    assert response.json()["status"] == "unchanged"
    assert len(domain_events(db, "order.recorded")) == 1
    assert domain_events(db, "order.updated") == []

    # A changed order is updated; the aggregates move by the difference.
    changed = order_body(
        lines=[{"line_id": "L1", "sku": "TEA-1", "quantity": 3, "unit_price": "10.00"}],
        total="34.90", status="shipped", attributes={"gift": True},
    )
    response = client.post(URL, json=changed, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "updated"
    result = response.json()["result"]
    assert result["status"] == "shipped" and len(result["lines"]) == 1 and result["attributes"] == {"gift": True}
    updated = domain_events(db, "order.updated")
    assert len(updated) == 1 and "lines" in updated[0].payload["changed"]
    assert [e.payload["status"] for e in domain_events(db, "order.status_changed")] == ["shipped"]
    assert count(db, OrderLine) == 1
    assert customer(db, "c-1").total_spent == Decimal("34.90")
    bigger = order_body(shipping_total="14.90", total="44.90", status="shipped", attributes={"gift": True},
                        lines=[{"line_id": "L1", "sku": "TEA-1", "quantity": 3, "unit_price": "10.00"}])
    assert client.post(URL, json=bigger, headers=tenant.headers).json()["status"] == "updated"
    c = customer(db, "c-1")
    assert (c.orders_count, c.total_spent) == (1, Decimal("44.90"))

    # An older snapshot never rolls the status back.
    client.post(URL, json=order_body("2001", status="delivered"), headers=tenant.headers)
    response = client.post(URL, json=order_body("2001", status="paid", store="Lisbon"), headers=tenant.headers)
    assert response.json()["status"] == "updated"
    assert response.json()["result"]["status"] == "delivered"


def test_refusals_name_the_field(client: TestClient, tenant: Tenant) -> None:
    client.post(URL, json=order_body(), headers=tenant.headers)
    moved = client.post(URL, json=order_body(placed_at="2024-03-02T10:00:00+01:00"), headers=tenant.headers)
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["field"] == "placed_at"
    currency = client.post(URL, json=order_body(currency="USD"), headers=tenant.headers)
    assert currency.status_code == 422 and currency.json()["errors"][0]["field"] == "currency"
    client.post(URL, json=order_body("other", customer_external_id="c-2"), headers=tenant.headers)
    other = client.post(URL, json=order_body(customer_external_id="c-2"), headers=tenant.headers)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "customer_external_id"

    cases = {
        "placed_at": order_body(placed_at="2024-03-01T10:00:00"),
        "total": order_body(total="40.00"),
        "subtotal": order_body(subtotal="31.00"),
        "currency": order_body(currency="EURO"),
        "customer_external_id": order_body(customer_external_id=None),
        "lines.0.quantity": order_body(lines=[{"sku": "X", "quantity": 0, "unit_price": "1"}], total=None),
        "lines.0.unit_price": order_body(lines=[{"sku": "X", "quantity": 1, "unit_price": "-1"}], total=None,
                                         shipping_total="0"),
        "channel": order_body(channel="carrier-pigeon"),
    }
    for field, body in cases.items():
        response = client.post(URL, json=body, headers=tenant.headers)
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["field"] == field, response.json()

    assert client.post(URL, json=order_body()).status_code == 401
    key = client.post("/api/v1/api-keys", json={"name": "ro", "scopes": ["customers:read"]},
                      headers=tenant.headers).json()["key"]
    read_only = {"Authorization": f"Bearer {key}"}
    assert client.post(URL, json=order_body(), headers=read_only).status_code == 403
    assert client.get(URL, headers=read_only).status_code == 200


def test_totals_rule_and_customers_by_email(client: TestClient, tenant: Tenant) -> None:
    taxed = order_body("t1", tax_total="6.00", total="40.90")
    assert client.post(URL, json=taxed, headers=tenant.headers).status_code == 201
    included = order_body("t2", tax_total="6.00", taxes_included=True, total="34.90")
    assert client.post(URL, json=included, headers=tenant.headers).status_code == 201
    computed = order_body("t3", total=None, discount_total="2.00")
    response = client.post(URL, json=computed, headers=tenant.headers)
    assert Decimal(response.json()["result"]["total"]) == Decimal("32.90")
    reward = order_body("t4", total=None, lines=[
        {"sku": "TEA-1", "quantity": 1, "unit_price": "10.00"},
        {"name": "Reward: 5 off", "quantity": 1, "unit_price": "-5.00", "is_reward": True},
    ])
    response = client.post(URL, json=reward, headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert Decimal(response.json()["result"]["total"]) == Decimal("9.90")
    assert response.json()["result"]["lines"][1]["is_reward"] is True

    # An unknown customer named by email only is created, then found again by that email.
    body = order_body("e1", customer_external_id=None, customer_email="Ana@Example.COM")
    response = client.post(URL, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    again = client.post(URL, json=order_body("e2", customer_external_id=None, customer_email="ana@example.com"),
                        headers=tenant.headers)
    assert again.json()["result"]["customer_id"] == response.json()["result"]["customer_id"]


def test_status_changes_keep_a_history_and_cancel_releases_the_aggregates(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    client.post(URL, json=order_body(), headers=tenant.headers)
    for status in ("shipped", "delayed", "delayed", "delivered"):
        response = client.post(f"{URL}/1001/status", json={"status": status, "note": f"now {status}"},
                               headers=tenant.headers)
        assert response.status_code == 200, response.text
    assert count(db, OrderStatusChange) == 3  # the repeated "delayed" changed nothing
    changes = domain_events(db, "order.status_changed")
    assert [(e.payload["previous_status"], e.payload["status"]) for e in changes] == [
        ("paid", "shipped"), ("shipped", "delayed"), ("delayed", "delivered")]
    detail = client.get(f"{URL}/1001", headers=tenant.headers).json()
    assert [h["status"] for h in detail["status_history"]] == ["shipped", "delayed", "delivered"]
    cancel = client.post(f"{URL}/1001/status", json={"status": "cancelled"}, headers=tenant.headers)
    assert cancel.json()["result"]["status"] == "cancelled"
    c = customer(db, "c-1")
    assert (c.orders_count, c.total_spent) == (0, Decimal(0))
    after = client.post(f"{URL}/1001/status", json={"status": "shipped"}, headers=tenant.headers)
    assert after.status_code == 422 and after.json()["errors"][0]["field"] == "status"
    assert client.post(f"{URL}/nope/status", json={"status": "shipped"}, headers=tenant.headers).status_code == 404


def test_list_get_and_tenant_isolation(client: TestClient, tenant: Tenant, db: Database) -> None:
    for i in range(5):
        client.post(URL, json=order_body(f"o-{i}"), headers=tenant.headers)
    page = client.get(URL, params={"limit": 2}, headers=tenant.headers).json()
    assert [o["external_id"] for o in page["items"]] == ["o-4", "o-3"]
    rest = client.get(URL, params={"limit": 10, "cursor": page["next_cursor"]}, headers=tenant.headers).json()
    assert [o["external_id"] for o in rest["items"]] == ["o-2", "o-1", "o-0"] and rest["next_cursor"] is None
    other = make_tenant(db, "globex")
    assert client.get(f"{URL}/o-1", headers=other.headers).status_code == 404
    assert client.get(URL, headers=other.headers).json()["items"] == []
    assert client.post(URL, json=order_body("o-1"), headers=other.headers).json()["status"] == "created"


def test_idempotency_key_replays_the_response(client: TestClient, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "k-1"}
    first = client.post(URL, json=order_body(), headers=headers)
    second = client.post(URL, json=order_body(), headers=headers)
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json() == first.json() and second.status_code == 201
