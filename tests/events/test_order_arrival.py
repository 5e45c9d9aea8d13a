"""The single-order hot path (``create_order``): who the customer is, what a first-time customer gets,
and concurrent senders of one order or one new customer on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer, CustomerIdentity, StageHistory
from patronage.customers.order_profiles import create_customer_for_order, ensure_customer
from patronage.events import orders as order_service
from patronage.events.models import Order, OrderLine, Product
from patronage.events.schemas import OrderIn
from patronage.kit.audit import AuditEntry
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent, Job
from tests.conftest import Tenant
from tests.events.helpers import count, customer, domain_events, order_body
from tests.racing import race

URL = "/api/v1/orders"


def test_first_time_customer_gets_profile_identity_stage_and_events(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    response = client.post(URL, json=order_body(customer_external_id="new-1"), headers=tenant.headers)
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    c = customer(db, "new-1")
    assert result["customer_id"] == c.id
    assert (c.orders_count, c.total_spent, c.lifecycle_stage) == (1, Decimal("34.90"), "prospect")
    assert c.first_order_at == c.last_order_at and c.first_order_at.isoformat().startswith("2024-03-01T09:00")
    with db.unit_of_work(read_only=True) as s:
        identities = s.execute(select(CustomerIdentity.kind, CustomerIdentity.value)
                               .where(CustomerIdentity.customer_id == c.id)).all()
        assert [tuple(i) for i in identities] == [("external_id", "new-1")]
        stages = s.execute(select(StageHistory.stage, StageHistory.exited_at)
                           .where(StageHistory.customer_id == c.id)).all()
        assert [tuple(h) for h in stages] == [("prospect", None)]
        events = s.execute(select(DomainEvent.id, DomainEvent.type).order_by(DomainEvent.id)).all()
        # The profile is announced before its order, and each event has its subscribers' jobs.
        assert [e.type for e in events] == ["customer.created", "order.recorded"]
        for event_id, _ in events:
            jobs = s.scalars(select(Job.payload)).all()
            assert any(j["event_id"] == event_id for j in jobs)
    created = domain_events(db, "customer.created")[0].payload
    assert created == {"customer_id": c.id}
    assert domain_events(db, "order.recorded")[0].payload["customer_id"] == c.id

    # The response is the stored order, lines included (amounts as sent: 34.90 for the stored 34.9000).
    stored = client.get(f"{URL}/1001", headers=tenant.headers).json()
    for key in ("id", "customer_id", "currency", "status", "source", "created_at", "updated_at", "placed_at"):
        assert stored[key] == result[key], key
    for key in ("total", "subtotal", "shipping_total", "refunded_total"):
        assert Decimal(stored[key]) == Decimal(result[key]), key
    assert [(line["position"], line["sku"], line["name"], Decimal(line["unit_price"]), Decimal(line["discount"]))
            for line in stored["lines"]] == [
        (line["position"], line["sku"], line["name"], Decimal(line["unit_price"]), Decimal(line["discount"]))
        for line in result["lines"]]

    # The same customer's next order counts on the same profile and creates nothing new.
    client.post(URL, json=order_body("1002", customer_external_id="new-1", placed_at="2024-04-01T10:00:00Z"),
                headers=tenant.headers)
    c = customer(db, "new-1")
    assert (c.orders_count, c.total_spent) == (2, Decimal("69.80"))
    assert c.last_order_at is not None and c.last_order_at.isoformat().startswith("2024-04-01T10:00")
    assert len(domain_events(db, "customer.created")) == 1
    assert count(db, Customer) == 1


def test_first_order_that_arrives_cancelled_counts_nowhere(client: TestClient, tenant: Tenant, db: Database) -> None:
    body = order_body(customer_external_id="new-2", status="cancelled")
    assert client.post(URL, json=body, headers=tenant.headers).status_code == 201
    c = customer(db, "new-2")
    assert (c.orders_count, c.total_spent, c.first_order_at, c.last_order_at) == (0, Decimal(0), None, None)
    assert [e.payload["status"] for e in domain_events(db, "order.status_changed")] == ["cancelled"]
    assert len(domain_events(db, "customer.created")) == 1


def test_lines_take_the_catalogue_and_the_workspace_currency(client: TestClient, tenant: Tenant, db: Database) -> None:
    client.post("/api/v1/products", json={"sku": "TEA-9", "name": "Oolong", "category": "Tea"},
                headers=tenant.headers)
    body = order_body(lines=[{"sku": "TEA-9", "quantity": 1, "unit_price": "30.00"},
                             {"sku": "NOPE", "quantity": 1, "unit_price": "0.00"}], total="34.90")
    result = client.post(URL, json=body, headers=tenant.headers).json()["result"]
    assert result["currency"] == "EUR"
    assert [(line["name"], line["category"]) for line in result["lines"]] == [("Oolong", "Tea"), (None, None)]
    assert count(db, OrderLine) == 2 and count(db, Product) == 1
    sent = client.post(URL, json=order_body("1002", currency="usd"), headers=tenant.headers).json()["result"]
    assert sent["currency"] == "USD"
    # A long order (more skus than the look-up's fixed parameters) is filled in all the same.
    for i in range(12):
        client.post("/api/v1/products", json={"sku": f"S-{i}", "name": f"Item {i}", "category": "Bulk"},
                    headers=tenant.headers)
    many = [{"sku": f"S-{i}", "quantity": 1, "unit_price": "1.00"} for i in range(12)]
    long = client.post(URL, json=order_body("1003", lines=many, total="16.90"), headers=tenant.headers)
    assert long.status_code == 201, long.text
    assert [line["name"] for line in long.json()["result"]["lines"]] == [f"Item {i}" for i in range(12)]


def test_known_customers_by_email_identity_and_through_merges(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    ann = client.post("/api/v1/customers", json={"external_id": "shop-1", "email": "ann@example.com"},
                      headers=tenant.headers).json()
    # Her email changes; the old one stays a secondary identity and still finds her.
    client.post("/api/v1/customers", json={"external_id": "shop-1", "email": "ann@new.example"},
                headers=tenant.headers)
    for i, email in enumerate(["Ann@New.Example", "ann@example.com"]):
        body = order_body(f"e-{i}", customer_external_id=None, customer_email=email)
        response = client.post(URL, json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        assert response.json()["result"]["customer_id"] == ann["id"]
    c = customer(db, "shop-1")
    assert (c.orders_count, c.total_spent) == (2, Decimal("69.80"))

    # An order naming a merged-away profile counts on the survivor.
    dup = client.post("/api/v1/customers", json={"external_id": "shop-2"}, headers=tenant.headers).json()
    merged = client.post(f"/api/v1/customers/{ann['id']}/merge", json={"duplicate_id": dup["id"]},
                         headers=tenant.headers)
    assert merged.status_code == 200, merged.text
    response = client.post(URL, json=order_body("m-1", customer_external_id="shop-2"), headers=tenant.headers)
    assert response.json()["result"]["customer_id"] == ann["id"]
    assert customer(db, "shop-1").orders_count == 3
    assert len(domain_events(db, "customer.created")) == 2  # the two profiles made through the API only


def test_new_customers_named_by_email_get_their_profile_and_identities(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    body = order_body("g-1", customer_external_id=None, customer_email="guest@example.com")
    assert client.post(URL, json=body, headers=tenant.headers).status_code == 201
    body = order_body("g-2", customer_external_id="shop-7", customer_email="Bo@Example.com")
    response = client.post(URL, json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    c = customer(db, "shop-7")
    assert response.json()["result"]["customer_id"] == c.id
    assert (c.email, c.orders_count, c.total_spent) == ("bo@example.com", 1, Decimal("34.90"))
    with db.unit_of_work(read_only=True) as s:
        guest = s.scalars(select(Customer).where(Customer.email == "guest@example.com")).one()
        assert (guest.external_id, guest.orders_count) == (None, 1)
        identities = s.execute(select(CustomerIdentity.kind, CustomerIdentity.value)
                               .where(CustomerIdentity.customer_id == c.id).order_by(CustomerIdentity.kind)).all()
        assert [tuple(i) for i in identities] == [("email", "bo@example.com"), ("external_id", "shop-7")]
        audited = s.execute(select(AuditEntry.action, AuditEntry.data)
                            .where(AuditEntry.subject_type == "customer", AuditEntry.subject_id == str(c.id))).all()
        assert [tuple(a) for a in audited] == [("customer.created", {"fields": ["email", "external_id"]})]
    assert len(domain_events(db, "customer.created")) == 2
    # The shop's id of a known email's profile: the profile takes it (the general upsert decides).
    body = order_body("g-3", customer_external_id="shop-8", customer_email="guest@example.com")
    assert client.post(URL, json=body, headers=tenant.headers).json()["result"]["customer_id"] == guest.id
    assert customer(db, "shop-8").orders_count == 2


def test_create_customer_for_order_leaves_nothing_when_the_email_is_taken(tenant: Tenant, db: Database) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as s:
        owner = Customer(workspace_id=ws, external_id="own-1", email="taken@example.com", tags=[], attributes={})
        s.add(owner)
        s.flush()
        s.add(CustomerIdentity(workspace_id=ws, customer_id=owner.id, kind="email", value="taken@example.com"))
    with db.unit_of_work() as s:
        events: list[tuple[str, dict[str, Any]]] = []
        assert create_customer_for_order(s, ws, "new-9", "taken@example.com", actor="t", first_order=None,
                                         events=events) is None
        assert events == []
    assert count(db, Customer) == 1 and count(db, CustomerIdentity) == 1


def test_ensure_customer_yields_to_an_identity_that_already_names_the_id(tenant: Tenant, db: Database) -> None:
    """An external id held only as another profile's identity row (no profile column): the new profile
    is taken back and the owner returned, with nothing of ours left."""
    ws = tenant.workspace_id
    with db.unit_of_work() as s:
        owner = Customer(workspace_id=ws, external_id="own-1", tags=[], attributes={})
        s.add(owner)
        s.flush()
        s.add(CustomerIdentity(workspace_id=ws, customer_id=owner.id, kind="external_id", value="alias-1"))
        owner_id = owner.id
    with db.unit_of_work() as s:
        events: list[tuple[str, dict[str, Any]]] = []
        found = ensure_customer(s, ws, "alias-1", first_order=None, events=events)
        assert found == (owner_id, False) and events == []
        created = ensure_customer(s, ws, "fresh-1", first_order=None, events=events)
        assert created[1] and events == [("customer.created", {"customer_id": created[0]})]
    assert count(db, Customer) == 2


# ---- concurrent senders (PostgreSQL) --------------------------------------------------------------
def _record(ws: int, body: dict[str, Any]) -> Callable[[Session], Any]:
    return lambda s: order_service.upsert_order(s, ws, OrderIn.model_validate(body), actor="test")[0]


@pytest.mark.parametrize("backend", ["postgres"])
def test_one_new_order_sent_twice_at_once_is_recorded_once(db: Database, tenant: Tenant) -> None:
    ws, body = tenant.workspace_id, order_body(customer_external_id="race-1")
    assert race(db, _record(ws, body), _record(ws, body)) == ["created", "unchanged"]
    changed = order_body("2001", customer_external_id="race-2")
    later = {**changed, "status": "shipped"}
    assert race(db, _record(ws, changed), _record(ws, later)) == ["created", "updated"]
    assert count(db, Order) == 2 and count(db, Customer) == 2
    for external_id in ("race-1", "race-2"):
        c = customer(db, external_id)
        assert (c.orders_count, c.total_spent) == (1, Decimal("34.90"))
    assert len(domain_events(db, "order.recorded")) == 2
    assert len(domain_events(db, "customer.created")) == 2


@pytest.mark.parametrize("backend", ["postgres"])
def test_two_first_orders_of_one_new_customer_at_once_share_one_profile(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    outcomes = race(db, _record(ws, order_body("a-1", customer_external_id="twin")),
                     _record(ws, order_body("a-2", customer_external_id="twin")))
    assert outcomes == ["created", "created"]
    c = customer(db, "twin")
    assert (c.orders_count, c.total_spent) == (2, Decimal("69.80"))
    with db.unit_of_work(read_only=True) as s:
        assert set(s.scalars(select(Order.customer_id))) == {c.id}
    assert count(db, Customer) == 1 and count(db, CustomerIdentity) == 1 and count(db, StageHistory) == 1
    assert len(domain_events(db, "customer.created")) == 1
