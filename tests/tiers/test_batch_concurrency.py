"""Concurrent tier batches on PostgreSQL: workers whose batches share customers (in different orders,
orders and points at once) neither deadlock nor lose an upgrade; every customer ends on the tier their
credit reaches, with one membership and a history that chains."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.registry import REGISTRY, JobContext
from patronage.ledger import service as ledger
from patronage.tiers import doctor, service
from patronage.tiers import repository as repo
from patronage.tiers.models import TierCredit, TierMembership
from patronage.tiers.schemas import TierCreate, TierProgramIn
from tests.conftest import Tenant
from tests.rewards.helpers import new_customer
from tests.tiers.equivalence import job_context

T0 = datetime(2025, 6, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize("backend", ["postgres"])
def test_overlapping_batches_in_parallel(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    clock.freeze(T0)
    customers = [new_customer(db, ws, external_id=f"c{i}") for i in range(6)]
    with db.unit_of_work() as s:
        for name, threshold in (("Base", "0"), ("Silver", "100"), ("Gold", "300"), ("Platinum", "700")):
            service.create_tier(s, ws, TierCreate(name=name, threshold=Decimal(threshold)), actor="t")
        service.update_program(s, ws, TierProgramIn(metric="points_earned"), actor="t")  # type: ignore[arg-type]
    rng = random.Random(11)
    batches: list[list[JobContext]] = []
    with db.unit_of_work() as s:
        for b in range(8):
            jobs = []
            for i in range(10):
                cid = rng.choice(customers)
                placed = (T0 - timedelta(hours=rng.randrange(1, 300))).isoformat()
                if b % 2:
                    txn = ledger.earn(s, ws, cid, rng.randrange(10, 90), source_type="test",
                                      source_id=f"{b}-{i}", reason="t", actor="t")
                    jobs.append(job_context("tiers.on_points_earned", ws, {
                        "points": txn.points, "transaction_id": txn.id}, event_type="points.earned", when=T0))
                else:
                    jobs.append(job_context("tiers.on_order_recorded", ws, {
                        "order_id": 1000 * b + i, "customer_id": cid, "total": "25.00", "placed_at": placed},
                        event_type="order.recorded", when=T0))
            batches.append(jobs)
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def run(jobs: list[JobContext]) -> None:
        try:
            start.wait(10)
            with db.unit_of_work() as session:
                batch_fn = REGISTRY.tasks[jobs[0].task].batch_fn
                assert batch_fn is not None
                batch_fn(session, jobs)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(jobs,)) for jobs in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors

    with db.unit_of_work(read_only=True) as s:
        points: dict[int, int] = {}
        for cid, p in s.execute(select(TierCredit.customer_id, TierCredit.points).where(TierCredit.workspace_id == ws)):
            points[cid] = points.get(cid, 0) + p
        ladder = repo.TierRepository(s, ws).ladder()
        held = {c: t for c, t in s.execute(select(TierMembership.customer_id, TierMembership.tier_id))}
        findings = [f for check in doctor.CHECKS for f in check(s)]
    assert sum(points.values()) == sum(
        int(j.payload["payload"]["points"]) for jobs in batches for j in jobs if j.task.endswith("points_earned"))
    base = ladder.base()
    assert base is not None
    for cid, total in points.items():
        qualified = ladder.qualified(Decimal(total))
        assert qualified is not None and held.get(cid, base.id) == qualified.id
    assert all(f.severity == "ok" for f in findings), findings
