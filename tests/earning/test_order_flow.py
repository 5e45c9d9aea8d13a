"""Orders earn through the real API and the worker: pending, available after the return window,
exact and idempotent reversal on returns, cancellation, claw-back; doctor passes after each flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.config import Settings
from patronage.earning import service
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.ledger import maintenance
from patronage.ledger.models import LedgerTransaction
from tests.conftest import Tenant
from tests.earning.conftest import BASE_RULES, drain, points, publish, send_order, send_return
from tests.ledger.conftest import assert_doctor_ok, set_program

PLACED = datetime(2024, 3, 5, 12, tzinfo=UTC)
LINES = [
    {"line_id": "a", "sku": "SHOE", "category": "shoes", "quantity": 2, "unit_price": "50.00"},
    {"line_id": "b", "sku": "SOCK", "category": "socks", "quantity": 3, "unit_price": "9.99"},
    {"line_id": "c", "sku": "VOUCHER", "quantity": 1, "unit_price": "-10.00", "is_reward": True},
]


def test_order_earns_pending_points_that_become_available(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    clock.freeze(PLACED + timedelta(minutes=5))
    publish(client, tenant, BASE_RULES)
    order = send_order(client, tenant, "o-1", LINES, discount_total="5.00")
    drain(db, settings)
    # Net paid: 100 + 29.97 - (5 + 10 prorated) = 114.97 -> 114 points, pending for 30 days.
    p = points(client, tenant, order["customer_id"])
    assert (p["pending"], p["available"], p["lifetime_earned"]) == (114, 0, 114)
    clock.freeze(PLACED + timedelta(days=30, minutes=1))
    drain(db, settings)  # the periodic settle job releases it
    p = points(client, tenant, order["customer_id"])
    assert (p["pending"], p["available"]) == (0, 114)
    txns = client.get(f"/api/v1/customers/{order['customer_id']}/points/transactions", headers=tenant.headers).json()
    assert [t["kind"] for t in txns["items"]] == ["release", "earn"]
    earn = txns["items"][1]
    assert sum(e["amount"] for e in earn["entries"]) == 0
    assert sum(v["points"] for v in earn["data"]["lines"].values()) == 114 and "2" not in earn["data"]["lines"]
    assert_doctor_ok(db)


def test_returns_reverse_exactly_what_the_lines_earned(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    clock.freeze(PLACED + timedelta(minutes=5))
    publish(client, tenant, BASE_RULES)
    order = send_order(client, tenant, "o-1", LINES, discount_total="5.00")
    drain(db, settings)
    customer = order["customer_id"]
    with db.unit_of_work(read_only=True) as s:
        earned = s.scalars(select(LedgerTransaction).where(LedgerTransaction.kind == "earn")).one()
        per_line = {k: v["points"] for k, v in earned.data["lines"].items()}
    send_return(client, tenant, "r-1", "o-1", [{"line_id": "b", "quantity": 1}])
    drain(db, settings)
    first = per_line["1"] // 3
    assert points(client, tenant, customer)["pending"] == 114 - first
    send_return(client, tenant, "r-2", "o-1", [{"line_id": "b", "quantity": 2}, {"line_id": "a", "quantity": 1}])
    drain(db, settings)
    assert points(client, tenant, customer)["pending"] == 114 - per_line["1"] - per_line["0"] // 2
    send_return(client, tenant, "r-3", "o-1", None)  # the rest of the order
    drain(db, settings)
    p = points(client, tenant, customer)
    assert (p["pending"], p["lifetime_reversed"]) == (0, 114)
    # Handlers are idempotent: delivering return.applied again reverses nothing more.
    with db.unit_of_work() as s:
        payload = {"return_id": 1, "order_id": order["id"], "customer_id": customer, "amount": "1",
                   "lines": [{"position": 1, "quantity": 1}]}
        again = service.reverse_return(s, tenant.workspace_id, payload)
        assert again is not None and again.data["return_id"] == 1
    assert points(client, tenant, customer)["lifetime_reversed"] == 114
    assert_doctor_ok(db)


def test_spent_points_then_returned_are_clawed_back_from_future_earnings(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    set_program(db, tenant.workspace_id, return_window_days=0)
    publish(client, tenant, BASE_RULES)
    order = send_order(client, tenant, "o-1", [{"sku": "A", "unit_price": "100"}])
    drain(db, settings)
    customer = order["customer_id"]
    from patronage.ledger import service as ledger

    with db.unit_of_work() as s:
        ledger.spend(s, tenant.workspace_id, customer, 80, source_type="reward", source_id="r1", reason="coffee",
                     actor="member:1")
    send_return(client, tenant, "r-1", "o-1", None)
    drain(db, settings)
    p = points(client, tenant, customer)
    assert (p["available"], p["clawback_owed"]) == (0, 80)
    send_order(client, tenant, "o-2", [{"sku": "A", "unit_price": "50"}], placed_at="2024-03-06T12:00:00Z")
    drain(db, settings)
    p = points(client, tenant, customer)
    assert (p["available"], p["clawback_owed"]) == (0, 30)
    assert_doctor_ok(db)


def test_cancelled_orders_give_their_points_back(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    publish(client, tenant, BASE_RULES)
    order = send_order(client, tenant, "o-1", [{"sku": "A", "unit_price": "40"}])
    drain(db, settings)
    r = client.post("/api/v1/orders/o-1/status", headers=tenant.headers, json={"status": "cancelled"})
    assert r.status_code == 200, r.text
    drain(db, settings)
    p = points(client, tenant, order["customer_id"])
    assert (p["pending"], p["lifetime_reversed"]) == (0, 40)
    assert_doctor_ok(db)


def test_orders_without_live_rules_earn_nothing(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    order = send_order(client, tenant, "o-1", [{"sku": "A", "unit_price": "40"}])
    drain(db, settings)
    assert points(client, tenant, order["customer_id"])["lifetime_earned"] == 0


def test_settle_runs_on_its_own(db: Database, tenant: Tenant) -> None:
    with db.unit_of_work() as s:
        assert maintenance.settle_due(s, tenant.workspace_id) == 0
