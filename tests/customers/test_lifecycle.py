"""Lifecycle stage, order aggregates and the bulk ingestion paths, against the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patronage.customers import tasks
from patronage.customers.merge import merge_customers
from patronage.customers.models import Customer, CustomerIdentity, StageHistory
from patronage.customers.service import ensure_customers, record_orders_totals
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.errors import ValidationFailed
from patronage.kit.jobs.models import DomainEvent
from patronage.kit.jobs.registry import REGISTRY, JobContext
from tests.conftest import Tenant
from tests.customers.conftest import API, add_event, add_order, create_customer

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)


def _ctx(workspace_id: int, customer_id: int | None = None) -> JobContext:
    payload = {"payload": {"customer_id": customer_id}} if customer_id else {"fire_time": T0.isoformat()}
    return JobContext(0, "test", workspace_id, payload, 1, 1, T0)


def test_ensure_customers_and_relative_totals(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as session:
        ids = ensure_customers(session, ws, ["x-1", "x-2", "x-1"])
        assert set(ids) == {"x-1", "x-2"}
        more = ensure_customers(session, ws, ["x-2", "x-3"])
        assert more["x-2"] == ids["x-2"]
        ids["x-3"] = more["x-3"]
        with pytest.raises(ValidationFailed):
            ensure_customers(session, ws, [" padded "])
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 3
        kinds = session.execute(select(CustomerIdentity.kind, CustomerIdentity.value)).all()
        assert sorted(kinds) == [("external_id", "x-1"), ("external_id", "x-2"), ("external_id", "x-3")]
        assert session.scalar(select(func.count()).select_from(StageHistory)) == 3
        merge_customers(session, ws, ids["x-1"], ids["x-2"], actor="test")
    with db.unit_of_work() as session:
        assert ensure_customers(session, ws, ["x-2"]) == {"x-2": ids["x-1"]}  # merged: the survivor

    a, b = ids["x-1"], ids["x-3"]
    with db.unit_of_work() as session:
        record_orders_totals(session, ws, [
            (a, T0, Decimal("10.50"), 1),
            (b, T0 + timedelta(days=3), "7", 1),
            (a, T0 - timedelta(days=2), Decimal("4.50"), 1),
            (a, None, Decimal("-5.00"), 0),  # a refund: the dates stay
        ])
    with db.unit_of_work() as session:  # relative: a second writer adds to what is there
        record_orders_totals(session, ws, [(a, T0 + timedelta(days=9), Decimal("1"), 1), (b, None, 0, -1)])
    with db.unit_of_work(read_only=True) as session:
        first = session.get(Customer, a)
        second = session.get(Customer, b)
        assert first is not None and second is not None
        assert (first.orders_count, first.total_spent) == (3, Decimal("11.0000"))
        assert (first.first_order_at, first.last_order_at) == (T0 - timedelta(days=2), T0 + timedelta(days=9))
        assert (second.orders_count, second.total_spent) == (0, Decimal("7.0000"))


def test_stage_transitions_history_events_and_settings(client: TestClient, tenant: Tenant, db: Database) -> None:
    h = tenant.headers
    ws = tenant.workspace_id
    assert "customers.lifecycle_on_order_recorded" in REGISTRY.handler_tasks("order.recorded")
    assert "customers.lifecycle_on_return" in REGISTRY.handler_tasks("return.applied")
    assert REGISTRY.periodic["customers.lifecycle_daily"].per_workspace

    clock.freeze(T0)
    cid = create_customer(client, tenant, external_id="life", email="life@example.com")["id"]
    idle = create_customer(client, tenant, external_id="idle")["id"]

    def stage_of(customer_id: int) -> str:
        body = client.get(f"{API}/customers/{customer_id}", headers=h).json()
        return str(body["lifecycle_stage"])

    def run(handler, customer_id: int | None = None) -> None:  # type: ignore[no-untyped-def]
        with db.unit_of_work() as session:
            handler(session, _ctx(ws, customer_id))

    add_order(db, ws, cid, "o1", "40", T0)
    run(tasks.lifecycle_on_activity, cid)
    assert stage_of(cid) == "new"
    for i, days in enumerate((10, 20, 30, 40), start=2):
        clock.freeze(T0 + timedelta(days=days))
        add_order(db, ws, cid, f"o{i}", "40", T0 + timedelta(days=days))
    run(tasks.lifecycle_on_activity, cid)
    assert stage_of(cid) == "loyal"  # 5 orders
    add_event(db, ws, cid, "rev-1", "review_posted", T0 + timedelta(days=40))
    run(tasks.lifecycle_daily)
    assert stage_of(cid) == "advocate"
    assert stage_of(idle) == "prospect"

    # Rhythm is 10 days: at risk past 20 idle days, lapsed past 40.
    clock.freeze(T0 + timedelta(days=61))
    run(tasks.lifecycle_daily)
    assert stage_of(cid) == "at_risk"
    clock.freeze(T0 + timedelta(days=81))
    run(tasks.lifecycle_daily)
    assert stage_of(cid) == "lapsed"

    lifecycle = client.get(f"{API}/customers/{cid}/lifecycle", headers=h).json()
    assert lifecycle["stage"] == "lapsed"
    history = lifecycle["history"]
    assert [r["stage"] for r in history] == ["lapsed", "at_risk", "advocate", "loyal", "new", "prospect"]
    assert history[0]["exited_at"] is None
    assert all(r["exited_at"] == later["entered_at"] for r, later in zip(history[1:], history, strict=False))
    assert history[0]["reason"]["rhythm_days"] == 10.0
    with db.unit_of_work(read_only=True) as session:
        events = session.execute(
            select(DomainEvent.type, DomainEvent.payload)
            .where(DomainEvent.type.like("customer.stage_%"))
            .order_by(DomainEvent.id)
        ).all()
    entered = [p["stage"] for t, p in events if t == "customer.stage_entered"]
    exited = [(p["stage"], p["to"]) for t, p in events if t == "customer.stage_exited"]
    assert entered == ["new", "loyal", "advocate", "at_risk", "lapsed"]
    assert exited[0] == ("prospect", "new") and exited[-1] == ("at_risk", "lapsed")

    # Workspace-tuned thresholds: a more patient shop.
    url = f"{API}/customer-settings"
    defaults = client.get(url, headers=h).json()
    assert defaults["lifecycle"]["lapsed_factor"] == 4.0 and defaults["lifecycle_overrides"] == {}
    bad = client.patch(url, json={"lifecycle": {"lapsed_factor": 1.5}}, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("lifecycle")
    unknown = client.patch(url, json={"lifecycle": {"colour": "red"}}, headers=h)
    assert unknown.json()["errors"][0]["field"] == "lifecycle.colour"
    tuned = client.patch(url, json={"lifecycle": {"lapsed_factor": 10, "at_risk_factor": 8}}, headers=h)
    assert tuned.status_code == 200, tuned.text
    assert tuned.json()["lifecycle_overrides"] == {"lapsed_factor": 10.0, "at_risk_factor": 8.0}
    recomputed = client.post(f"{API}/customers/{cid}/lifecycle/recompute", headers=h).json()
    assert recomputed["stage"] == "advocate"  # 41 idle days < 8 x 10
    reset = client.patch(url, json={"lifecycle": {"lapsed_factor": None, "at_risk_factor": None}}, headers=h)
    assert reset.json()["lifecycle_overrides"] == {}
    assert client.post(f"{API}/customers/999999/lifecycle/recompute", headers=h).status_code == 404
