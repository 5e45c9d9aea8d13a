from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from patronage.events.models import Return
from patronage.kit.db import Database
from tests.conftest import Tenant
from tests.events.helpers import count, customer, domain_events, order_body

ORDERS = "/api/v1/orders"
RETURNS = "/api/v1/returns"


def ret(external_id: str = "r-1", order: str = "1001", **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "order_external_id": order,
            "returned_at": "2024-03-10T12:00:00+00:00", **fields}


def test_partial_returns_by_line_and_over_refunds(client: TestClient, tenant: Tenant, db: Database) -> None:
    client.post(ORDERS, json=order_body(), headers=tenant.headers)
    by_line = client.post(RETURNS, json=ret(lines=[{"line_id": "L1", "quantity": 1}]), headers=tenant.headers)
    assert by_line.status_code == 201, by_line.text
    result = by_line.json()["result"]
    assert result["status"] == "applied" and result["kind"] == "lines"
    assert Decimal(result["amount"]) == Decimal("10.00")
    assert result["lines"][0]["line_id"] == "L1" and result["lines"][0]["quantity"] == 1

    by_sku = client.post(RETURNS, json=ret("r-2", lines=[{"sku": "MUG-1", "quantity": 1}]), headers=tenant.headers)
    assert Decimal(by_sku.json()["result"]["amount"]) == Decimal("10.00")  # 15.00 less its 5.00 discount
    order = client.get(f"{ORDERS}/1001", headers=tenant.headers).json()
    assert Decimal(order["refunded_total"]) == Decimal("20.00")
    assert [r["external_id"] for r in order["returns"]] == ["r-1", "r-2"]
    assert customer(db, "c-1").total_spent == Decimal("14.90")
    applied = domain_events(db, "return.applied")
    assert [Decimal(e.payload["amount"]) for e in applied] == [Decimal("10.00"), Decimal("10.00")]
    assert applied[0].payload["order_id"] == order["id"] and applied[0].payload["return_id"] == result["id"]
    assert applied[0].payload["lines"][0]["sku"] == "TEA-1"

    too_many = client.post(RETURNS, json=ret("r-3", lines=[{"line_id": "L1", "quantity": 2}]), headers=tenant.headers)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "lines.0.quantity"
    unknown = client.post(RETURNS, json=ret("r-3", lines=[{"line_id": "L9"}]), headers=tenant.headers)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "lines.0.line_id"

    # Over-refunds are a 422 naming the amount, and write nothing.
    client.post(ORDERS, json=order_body("2001", customer_external_id="c-2"), headers=tenant.headers)
    assert client.post(RETURNS, json=ret("o-1", "2001", amount="30.00"), headers=tenant.headers).status_code == 201
    over = client.post(RETURNS, json=ret("o-2", "2001", amount="5.00"), headers=tenant.headers)
    assert over.status_code == 422
    problem = over.json()
    assert problem["errors"][0]["field"] == "amount" and problem["errors"][0]["type"] == "refund_exceeds_order"
    assert "4.9" in problem["detail"]
    assert count(db, Return) == 3
    rest = client.post(RETURNS, json=ret("o-2", "2001"), headers=tenant.headers)  # full: what remains
    assert Decimal(rest.json()["result"]["amount"]) == Decimal("4.90")
    assert client.post(RETURNS, json=ret("o-3", "2001"), headers=tenant.headers).status_code == 422
    assert customer(db, "c-2").total_spent == Decimal(0)


def test_returns_are_idempotent_and_held_ones_may_change(client: TestClient, tenant: Tenant, db: Database) -> None:
    client.post(ORDERS, json=order_body(), headers=tenant.headers)
    body = ret(amount="5.00", reason="damaged")
    assert client.post(RETURNS, json=body, headers=tenant.headers).status_code == 201
    again = client.post(RETURNS, json=body, headers=tenant.headers)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    changed = client.post(RETURNS, json={**body, "amount": "6.00"}, headers=tenant.headers)
    assert changed.status_code == 409 and changed.json()["code"] == "return_final"
    assert len(domain_events(db, "return.applied")) == 1

    # A held return may still change until its order arrives.
    client.post(RETURNS, json=ret("h-1", "3001", amount="5.00"), headers=tenant.headers)
    changed = client.post(RETURNS, json=ret("h-1", "3001", amount="7.00"), headers=tenant.headers)
    assert changed.json()["status"] == "updated" and changed.json()["result"]["status"] == "held"
    client.post(ORDERS, json=order_body("3001"), headers=tenant.headers)
    assert Decimal(client.get(f"{RETURNS}/h-1", headers=tenant.headers).json()["amount"]) == Decimal("7.00")


def test_held_return_is_applied_when_its_order_arrives(client: TestClient, tenant: Tenant, db: Database) -> None:
    early = client.post(RETURNS, json=ret(lines=[{"sku": "TEA-1", "quantity": 2}]), headers=tenant.headers)
    assert early.status_code == 201 and early.json()["result"]["status"] == "held"
    assert client.post(RETURNS, json=ret("r-big", amount="999.00"), headers=tenant.headers).status_code == 201
    assert domain_events(db, "return.applied") == []

    client.post(ORDERS, json=order_body(), headers=tenant.headers)
    applied = client.get(f"{RETURNS}/r-1", headers=tenant.headers).json()
    assert applied["status"] == "applied" and Decimal(applied["amount"]) == Decimal("20.00")
    rejected = client.get(f"{RETURNS}/r-big", headers=tenant.headers).json()
    assert rejected["status"] == "rejected" and "exceeds" in rejected["error"]
    order = client.get(f"{ORDERS}/1001", headers=tenant.headers).json()
    assert Decimal(order["refunded_total"]) == Decimal("20.00")
    c = customer(db, "c-1")
    assert (c.orders_count, c.total_spent) == (1, Decimal("14.90"))
    assert len(domain_events(db, "return.applied")) == 1
    held = client.get(RETURNS, params={"status": "rejected"}, headers=tenant.headers).json()["items"]
    assert [r["external_id"] for r in held] == ["r-big"]

    # A refund after a cancellation is recorded but leaves the aggregates alone.
    client.post(ORDERS, json=order_body("4001", customer_external_id="c-4"), headers=tenant.headers)
    client.post(f"{ORDERS}/4001/status", json={"status": "cancelled"}, headers=tenant.headers)
    assert client.post(RETURNS, json=ret("x-1", "4001"), headers=tenant.headers).status_code == 201
    c = customer(db, "c-4")
    assert (c.orders_count, c.total_spent) == (0, Decimal(0))
    assert domain_events(db, "return.applied")[-1].payload["order_status"] == "cancelled"
