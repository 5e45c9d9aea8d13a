"""Bulk order imports and their batch domain events, on both databases.

An import records one ``orders.imported`` (and one ``customers.imported``) per chunk; the subscribers
handle a chunk set-based: lifecycle stages, tier credits and upgrades, earning (``--earn``) through the
bulk replay, referral qualification, one debounced segment evaluation. Re-running changes nothing, and
``patronage doctor`` proves the aggregates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from patronage.customers import doctor as customers_doctor
from patronage.customers.models import Customer
from patronage.events.importer.runner import run_import
from patronage.events.models import Order
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent, Job
from patronage.ledger.models import LedgerTransaction
from patronage.referrals.models import Referral
from patronage.tiers.models import Tier, TierCredit, TierMembership
from tests.conftest import Tenant, make_tenant
from tests.earning.conftest import BASE_RULES, publish
from tests.rewards.helpers import drain, new_customer

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def order(external_id: str, customer: str, total: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"external_id": external_id, "customer_external_id": customer, "placed_at": at.isoformat(),
            "lines": [{"sku": "TEA", "quantity": 1, "unit_price": total}], **extra}


ORDERS = [
    order("b-0", "bob", "10.00", T0 - timedelta(days=3)),  # below the referral minimum
    order("n1-1", "new-1", "300.00", T0 - timedelta(days=20)),
    order("b-1", "bob", "80.00", T0 - timedelta(days=2)),
    order("n1-2", "new-1", "300.00", T0 - timedelta(days=10)),
    order("n2-1", "new-2", "50.00", T0 - timedelta(days=5), status="cancelled"),
    order("n1-3", "new-1", "300.00", T0 - timedelta(days=1)),
    order("n2-2", "new-2", "20.00", T0 - timedelta(days=4)),
]


def write(path: Path, orders: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in orders))
    return path


def scalar(db: Database, stmt: Any) -> Any:
    with db.unit_of_work(read_only=True) as s:
        return s.scalar(stmt)


def customer_id(db: Database, workspace_id: int, external_id: str) -> int:
    return int(scalar(db, select(Customer.id).where(Customer.workspace_id == workspace_id,
                                                    Customer.external_id == external_id)))


def setup_programs(client: TestClient, tenant: Tenant, db: Database) -> tuple[int, int]:
    """1 point per EUR, a Silver/Gold ladder on spend, and Ann referring Bob (an existing customer)."""
    publish(client, tenant, BASE_RULES)
    program = {"metric": "spend", "window": "calendar_year", "grace_days": 30, "downgrade_policy": "drop_one"}
    assert client.put("/api/v1/tiers/program", headers=tenant.headers, json=program).status_code == 200
    for name, threshold in (("Silver", "0"), ("Gold", "500")):
        r = client.post("/api/v1/tiers", headers=tenant.headers, json={"name": name, "threshold": threshold})
        assert r.status_code == 201, r.text
    assert client.put("/api/v1/referrals/program", headers=tenant.headers, json={
        "welcome_trigger": "first_order", "welcome_points": 0, "referrer_points": 500,
        "min_order_amount": "20.00"}).status_code == 200
    ws = tenant.workspace_id
    ann = new_customer(db, ws, email="ann@example.com", external_id="ann")
    bob = new_customer(db, ws, email="bob@example.com", external_id="bob")
    code = client.post(f"/api/v1/customers/{ann}/referral-code", headers=tenant.headers, json={}).json()["code"]
    r = client.post("/api/v1/referrals", headers=tenant.headers, json={"code": code, "referred_customer_id": bob})
    assert r.status_code in (200, 201) and r.json()["status"] == "pending", r.text
    return ann, bob


def test_batch_events_drive_the_loyalty_engine_set_based(
    client: TestClient, tenant: Tenant, db: Database, settings: Any, tmp_path: Path
) -> None:
    clock.freeze(T0)
    ws = tenant.workspace_id
    _, bob = setup_programs(client, tenant, db)
    drain(db, settings)
    source = write(tmp_path / "orders.jsonl", ORDERS)
    report = run_import(db, ws, "orders", source, "jsonl", chunk_size=3)
    assert (report.created, report.failed) == (7, 0)

    # One batch event per chunk (3 + 3 + 1), none per order; one customers.imported for new-1 and new-2.
    with db.unit_of_work(read_only=True) as s:
        kinds = dict(s.execute(select(DomainEvent.type, func.count()).where(DomainEvent.workspace_id == ws)
                               .group_by(DomainEvent.type)).all())
        queued = set(s.scalars(select(Job.task).where(Job.workspace_id == ws, Job.status == "queued")))
    assert kinds.get("orders.imported") == 3 and "order.recorded" not in kinds
    assert kinds.get("customers.imported") == 2 and "customer.created" not in kinds
    assert {"customers.lifecycle_on_orders_imported", "tiers.on_orders_imported", "earning.orders_imported",
            "referrals.on_orders_imported", "segments.on:orders.imported"} <= queued
    drain(db, settings)

    new1, new2 = customer_id(db, ws, "new-1"), customer_id(db, ws, "new-2")
    with db.unit_of_work(read_only=True) as s:
        stages = dict(s.execute(select(Customer.id, Customer.lifecycle_stage)
                                .where(Customer.id.in_([new1, new2]))).all())
        credits = s.scalar(select(func.count()).select_from(TierCredit).where(
            TierCredit.workspace_id == ws, TierCredit.source_type == "order"))
        gold = s.scalar(select(Tier.id).where(Tier.workspace_id == ws, Tier.name == "Gold"))
        tier = s.scalar(select(TierMembership.tier_id).where(TierMembership.customer_id == new1))
        earned = dict(s.execute(select(LedgerTransaction.customer_id, func.sum(LedgerTransaction.points)).where(
            LedgerTransaction.workspace_id == ws, LedgerTransaction.kind == "earn",
            LedgerTransaction.source_type == "order").group_by(LedgerTransaction.customer_id)).all())
        referral = s.scalars(select(Referral).where(Referral.referred_id == bob)).one()
        b1 = s.scalar(select(Order.id).where(Order.workspace_id == ws, Order.external_id == "b-1"))
        evaluations = s.scalar(select(func.count()).select_from(Job).where(
            Job.workspace_id == ws, Job.task == "segments.evaluate_all"))
    assert stages[new1] != "prospect" and stages[new2] != "prospect"
    assert credits == 6  # every order but the cancelled one counts towards tiers
    assert tier == gold  # 900 spent this year
    assert earned == {new1: 900, new2: 20, bob: 90}  # the live rules, through the bulk replay
    assert referral.order_id == b1 and referral.status == "converted"  # b-0 is below the minimum
    assert evaluations == 1  # one debounced full evaluation, not a job per customer
    with db.unit_of_work(read_only=True) as s:
        assert [f.severity for f in customers_doctor.check_order_aggregates(s)] == ["ok"]

    # The same file again: nothing new, nothing recorded.
    events_before = scalar(db, select(func.count()).select_from(DomainEvent))
    again = run_import(db, ws, "orders", source, "jsonl", chunk_size=3)
    assert (again.created, again.unchanged) == (0, 7)
    assert scalar(db, select(func.count()).select_from(DomainEvent)) == events_before


def test_no_earn_import_posts_no_points_and_handlers_are_idempotent(
    client: TestClient, tenant: Tenant, db: Database, settings: Any, tmp_path: Path
) -> None:
    clock.freeze(T0)
    ws = tenant.workspace_id
    publish(client, tenant, BASE_RULES)
    source = write(tmp_path / "orders.jsonl", ORDERS)
    report = run_import(db, ws, "orders", source, "jsonl", earn=False)
    assert report.created == 7
    (event,) = [e for e in _events(db, ws) if e.type == "orders.imported"]
    assert event.payload["earn"] is False and event.payload["count"] == 7
    drain(db, settings)
    transactions = select(func.count()).select_from(LedgerTransaction).where(LedgerTransaction.workspace_id == ws)
    assert scalar(db, transactions) == 0
    credits = select(func.count()).select_from(TierCredit).where(TierCredit.workspace_id == ws)
    assert scalar(db, credits) == 6

    # A job run twice (at-least-once delivery) adds nothing the second time.
    with db.unit_of_work() as s:
        s.execute(update(Job).where(Job.workspace_id == ws, Job.task.in_(
            ("tiers.on_orders_imported", "customers.lifecycle_on_orders_imported"))).values(status="queued"))
    drain(db, settings)
    assert scalar(db, credits) == 6


def test_doctor_finds_a_corrupted_aggregate(db: Database, tmp_path: Path) -> None:
    tenant = make_tenant(db, "agg")
    ws = tenant.workspace_id
    run_import(db, ws, "orders", write(tmp_path / "o.jsonl", ORDERS), "jsonl")
    with db.unit_of_work(read_only=True) as s:
        assert [f.severity for f in customers_doctor.check_order_aggregates(s)] == ["ok"]
    new1 = customer_id(db, ws, "new-1")
    for corruption in ({"total_spent": Decimal("899.99")}, {"orders_count": 2},
                       {"last_order_at": T0 - timedelta(days=2)}):
        with db.unit_of_work() as s:
            s.execute(update(Customer).where(Customer.id == new1).values(**corruption))
        with db.unit_of_work(read_only=True) as s:
            (finding,) = customers_doctor.check_order_aggregates(s)
        assert finding.severity == "error" and f"customer {new1}" in finding.message, corruption
        with db.unit_of_work() as s:  # put it back
            s.execute(update(Customer).where(Customer.id == new1).values(
                total_spent=Decimal("900.00"), orders_count=3, last_order_at=T0 - timedelta(days=1)))
    with db.unit_of_work(read_only=True) as s:
        assert [f.severity for f in customers_doctor.check_order_aggregates(s)] == ["ok"]


def _events(db: Database, workspace_id: int) -> list[DomainEvent]:
    with db.unit_of_work(read_only=True) as s:
        return list(s.scalars(select(DomainEvent).where(DomainEvent.workspace_id == workspace_id)))


def test_held_returns_are_applied_when_their_orders_are_imported(db: Database, tmp_path: Path) -> None:
    from patronage.events.models import Return

    tenant = make_tenant(db, "held")
    ws = tenant.workspace_id
    returns = tmp_path / "returns.jsonl"
    returns.write_text(json.dumps({"external_id": "R-1", "order_external_id": "n1-2", "amount": "100.00"}) + "\n")
    assert run_import(db, ws, "returns", returns, "jsonl").created == 1
    run_import(db, ws, "orders", write(tmp_path / "o.jsonl", ORDERS), "jsonl")
    with db.unit_of_work(read_only=True) as s:
        status = s.scalar(select(Return.status).where(Return.workspace_id == ws, Return.external_id == "R-1"))
        spent = s.scalar(select(Customer.total_spent).where(Customer.workspace_id == ws,
                                                            Customer.external_id == "new-1"))
        assert [f.severity for f in customers_doctor.check_order_aggregates(s)] == ["ok"]
    assert status == "applied" and Decimal(str(spent)) == Decimal("800.00")
