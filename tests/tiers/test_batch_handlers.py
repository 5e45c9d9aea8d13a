"""The tiers' batch handlers (``tiers.on_order_recorded``, ``tiers.on_points_earned``) have exactly the
effects of their single handlers run job by job, on both databases: randomized batches with repeated
customers and sources, a customer crossing thresholds mid-batch, one leaving grace, one above an override,
orders dated before the current window."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.registry import REGISTRY, JobContext
from patronage.ledger import service as ledger
from patronage.tiers import qualification, service
from patronage.tiers import repository as repo
from patronage.tiers.models import TierMembership
from patronage.tiers.schemas import TierCreate, TierProgramIn
from tests.conftest import Tenant
from tests.rewards.helpers import new_customer
from tests.tiers.equivalence import assert_same_effects, job_context, run_batch, run_single

T0 = datetime(2025, 6, 15, 12, tzinfo=UTC)
LAST_YEAR = datetime(2024, 11, 2, 10, tzinfo=UTC)
LADDER = (("Base", "0"), ("Silver", "100"), ("Gold", "250"), ("Platinum", "500"))


def setup(
    db: Database, ws: int, *, metric: str = "spend", window: str = "calendar_year"
) -> tuple[list[int], dict[str, int]]:
    """Six customers and the ladder. The first is 10 short of Silver; the second holds Gold in grace with
    240 this year; the third has an active override to Silver, earned Base."""
    clock.freeze(T0)
    customers = [new_customer(db, ws, external_id=f"c{i}") for i in range(6)]
    with db.unit_of_work() as s:
        ids = {n: service.create_tier(s, ws, TierCreate(name=n, threshold=Decimal(t)), actor="t").id for n, t in LADDER}
        service.update_program(s, ws, TierProgramIn(metric=metric, window=window), actor="t")  # type: ignore[arg-type]
        credits = repo.CreditRepository(s, ws)
        credits.add_once(customer_id=customers[0], source_type="order", source_id="9000", order_id=9000,
                         occurred_at=T0 - timedelta(days=3), spend=Decimal(90), orders=1, points=90)
        credits.add_once(customer_id=customers[1], source_type="order", source_id="9001", order_id=9001,
                         occurred_at=T0 - timedelta(days=30), spend=Decimal(240), orders=1, points=240)
        s.add(TierMembership(workspace_id=ws, customer_id=customers[1], tier_id=ids["Gold"],
                             earned_tier_id=ids["Gold"], entered_at=T0 - timedelta(days=400),
                             earned_at=T0 - timedelta(days=400), review_at=datetime(2025, 1, 1, tzinfo=UTC),
                             downgrade_at=T0 + timedelta(days=10)))
        qualification.override(s, ws, customers[2], tier_id=ids["Silver"], until=T0 + timedelta(days=60),
                               reason="vip", actor="t")
    return customers, ids


def order_jobs(ws: int, customers: list[int], rng: random.Random, n: int) -> list[JobContext]:
    jobs = []
    for i in range(n):
        customer = customers[rng.randrange(len(customers))] if i else customers[0]
        placed = LAST_YEAR if rng.random() < 0.15 else T0 - timedelta(hours=rng.randrange(1, 500))
        order_id = 9000 if rng.random() < 0.08 else 100 + i  # now and then a source counted already
        total = f"{rng.randrange(5, 180)}.{rng.randrange(100):02d}"
        payload = {"order_id": order_id, "customer_id": customer, "total": total, "placed_at": placed.isoformat(),
                   "status": "paid"}
        jobs.append(job_context("tiers.on_order_recorded", ws, payload, event_type="order.recorded", when=T0,
                                event_id=i + 1))
        if rng.random() < 0.1:  # the same event delivered twice
            jobs.append(jobs[-1])
    return jobs


@pytest.mark.parametrize(("seed", "window"), [(1, "calendar_year"), (2, "calendar_year"), (3, "rolling_12_months"),
                                             (4, "lifetime")])
def test_order_batches_match_single_jobs(db: Database, tenant: Tenant, seed: int, window: str) -> None:
    ws = tenant.workspace_id
    customers, _ = setup(db, ws, window=window)
    rng = random.Random(seed)
    jobs = order_jobs(ws, customers, rng, 14)
    after = assert_same_effects(db, jobs)
    assert any(h["reason"] == "qualified" for h in after["tier_history"])
    assert after["tier_credits"]


def test_threshold_crossed_mid_batch_upgrades_at_that_order(db: Database, tenant: Tenant) -> None:
    """The first customer (90 this year) crosses Silver with their second order of the batch and Gold with
    their fourth: the history records the values at those orders, not the batch's total."""
    ws = tenant.workspace_id
    customers, ids = setup(db, ws)
    first, other = customers[0], customers[4]
    plan = [(first, "5.00"), (other, "50.00"), (first, "10.00"), (first, "100.00"), (first, "60.00"),
            (other, "80.00"), (first, "1.00")]
    jobs = [job_context("tiers.on_order_recorded", ws, {
        "order_id": 200 + i, "customer_id": cid, "total": total, "placed_at": (T0 - timedelta(hours=1)).isoformat()},
        event_type="order.recorded", when=T0, event_id=i + 1) for i, (cid, total) in enumerate(plan)]
    after = assert_same_effects(db, jobs)
    history = [(h["customer_id"], h["from_tier_id"], h["to_tier_id"], h["data"].get("value"))
               for h in after["tier_history"] if h["reason"] == "qualified"]
    assert history == [
        (first, ids["Base"], ids["Silver"], "105.0000"),
        (first, ids["Silver"], ids["Gold"], "265.0000"),
        (other, ids["Base"], ids["Silver"], "130.0000"),
    ]
    changed = [e["payload"] for e in after["domain_events"] if e["type"] == "tier.changed"]
    assert [(e["customer_id"], e["to_tier"]) for e in changed][-3:] == [
        (first, "Silver"), (first, "Gold"), (other, "Silver")]


def test_the_comparison_catches_evaluating_after_all_credits(db: Database, tenant: Tenant) -> None:
    """Guard on the test itself: crediting the whole batch before evaluating (the obvious set-based
    shortcut) upgrades at the wrong order, and the snapshots tell."""
    ws = tenant.workspace_id
    customers, _ = setup(db, ws)
    jobs = [job_context("tiers.on_order_recorded", ws, {
        "order_id": 300 + i, "customer_id": customers[0], "total": "40.00",
        "placed_at": (T0 - timedelta(hours=1)).isoformat()}, event_type="order.recorded", when=T0, event_id=i + 1)
        for i in range(3)]
    single = run_single(db, jobs)

    def credit_all_then_evaluate(session: Any, contexts: Any) -> None:
        for ctx in contexts:
            p = ctx.payload["payload"]
            qualification.credit_order(session, ws, order_id=p["order_id"], customer_id=p["customer_id"],
                                       total=Decimal(p["total"]), placed_at=datetime.fromisoformat(p["placed_at"]))
        for ctx in contexts:
            qualification.evaluate(session, ws, ctx.payload["payload"]["customer_id"])

    spec = REGISTRY.tasks["tiers.on_order_recorded"]
    REGISTRY.tasks["tiers.on_order_recorded"] = replace(spec, batch_fn=credit_all_then_evaluate)
    try:
        naive = run_batch(db, jobs)
    finally:
        REGISTRY.tasks["tiers.on_order_recorded"] = spec
    assert naive["tier_history"] != single["tier_history"]
    assert run_batch(db, jobs)["tier_history"] == single["tier_history"]


def points_jobs(db: Database, ws: int, customers: list[int], rng: random.Random, n: int) -> list[JobContext]:
    jobs = []
    with db.unit_of_work() as s:
        for i in range(n):
            customer = customers[rng.randrange(len(customers))] if i else customers[0]
            points = rng.randrange(5, 150)
            earned_at = LAST_YEAR if rng.random() < 0.15 else T0 - timedelta(hours=rng.randrange(1, 500))
            source = ("order", str(400 + i)) if rng.random() < 0.7 else ("manual", f"m{i}")
            txn = ledger.earn(s, ws, customer, points, source_type=source[0], source_id=source[1], reason="t",
                              actor="t", earned_at=earned_at)
            jobs.append({"points": points, "transaction_id": txn.id, "customer_id": customer})
    jobs.insert(2, {"points": 0, "transaction_id": jobs[0]["transaction_id"]})  # nothing to credit
    jobs.insert(4, {"points": 10, "transaction_id": 987_654})  # a transaction that is not there
    jobs.insert(5, dict(jobs[1]))  # the same earning twice
    return [job_context("tiers.on_points_earned", ws, p, event_type="points.earned", when=T0, event_id=i + 1)
            for i, p in enumerate(jobs)]


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_points_batches_match_single_jobs(db: Database, tenant: Tenant, seed: int) -> None:
    ws = tenant.workspace_id
    customers, _ = setup(db, ws, metric="points_earned", window="calendar_year" if seed != 6 else "lifetime")
    jobs = points_jobs(db, ws, customers, random.Random(seed), 12)
    after = assert_same_effects(db, jobs)
    assert any(h["reason"] == "qualified" for h in after["tier_history"])
    assert any(c["source_type"] == "points" for c in after["tier_credits"])


def test_without_a_ladder_only_credits_are_added(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    clock.freeze(T0)
    customers = [new_customer(db, ws, external_id=f"c{i}") for i in range(3)]
    jobs = order_jobs(ws, customers, random.Random(9), 8)
    after = assert_same_effects(db, jobs)
    assert after["tier_credits"] and not after["tier_memberships"] and not after["tier_history"]


def test_the_worker_finds_the_batch_forms() -> None:
    from patronage.tiers import tasks

    assert REGISTRY.tasks["tiers.on_order_recorded"].batch_fn is tasks.on_orders_recorded
    assert REGISTRY.tasks["tiers.on_points_earned"].batch_fn is tasks.on_points_earned_batch
