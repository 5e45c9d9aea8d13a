"""The batch handler of ``referrals.on_order_recorded`` has exactly the effects of the single handler run
job by job, on both databases: a referred customer's first orders (one too small, then one that converts
the referral and pays the welcome points), a second referred customer, a held referral, and many
customers nobody referred."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.referrals import service
from patronage.referrals.schemas import ReferralProgramIn
from tests.conftest import Tenant
from tests.rewards.helpers import new_customer
from tests.tiers.equivalence import assert_same_effects, job_context

T0 = datetime(2025, 4, 1, 12, tzinfo=UTC)


def test_batches_match_single_jobs(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    clock.freeze(T0)
    referrer = new_customer(db, ws, external_id="ann")
    bob, cy, dee = (new_customer(db, ws, external_id=n) for n in ("bob", "cy", "dee"))
    others = [new_customer(db, ws, external_id=f"x{i}") for i in range(5)]
    with db.unit_of_work() as s:
        service.update_program(s, ws, ReferralProgramIn(welcome_points=200, referrer_points=500,
                                                        min_order_amount=Decimal(20), max_per_day=2), actor="t")
        code = service.ensure_code(s, ws, referrer).code
        for referred in (bob, cy, dee):  # the third in a day is held (max_per_day=2)
            service.attribute(s, ws, code=code, referred_id=referred, signals={}, actor="t")
    clock.freeze(T0 + timedelta(days=1))
    rng = random.Random(3)
    plan = [(others[0], "50.00"), (bob, "10.00"), (others[1], "30.00"), (bob, "45.00"), (cy, "25.00"),
            (dee, "80.00"), (bob, "60.00")] + [(rng.choice(others), f"{rng.randrange(5, 99)}.00") for _ in range(6)]
    rng.shuffle(plan)
    jobs = [job_context("referrals.on_order_recorded", ws, {
        "order_id": 500 + i, "customer_id": cid, "total": total,
        "placed_at": (T0 + timedelta(days=1, minutes=-i)).isoformat()},
        event_type="order.recorded", when=T0, event_id=i + 1) for i, (cid, total) in enumerate(plan)]
    after = assert_same_effects(db, jobs)
    referrals = {r["referred_id"]: r for r in after["referrals"]}
    assert referrals[bob]["status"] == "converted" and referrals[cy]["status"] == "converted"
    assert referrals[dee]["status"] == "held" and referrals[dee]["order_id"] is not None
    welcomes = [t for t in after["ledger_transactions"] if t["source_type"] == service.WELCOME_SOURCE]
    assert sorted(t["customer_id"] for t in welcomes) == sorted([bob, cy])


def test_the_worker_finds_the_batch_form() -> None:
    from patronage.kit.jobs.registry import REGISTRY
    from patronage.referrals import tasks

    assert REGISTRY.tasks["referrals.on_order_recorded"].batch_fn is tasks.on_orders_recorded
