"""The lifecycle batch handler (the four order/return tasks) has exactly the effects of the single handler
run job by job, on both databases: repeated customers, stage changes of several kinds, a customer whose
stage stays, a merged-away profile and a job without a customer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from patronage.customers import lifecycle
from patronage.customers.merge import merge_customers
from patronage.customers.service import ensure_customers
from patronage.kit import clock
from patronage.kit.db import Database
from tests.conftest import Tenant
from tests.customers.conftest import add_event, add_order
from tests.tiers.equivalence import assert_same_effects, job_context

T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)
TASKS = {
    "customers.lifecycle_on_order_recorded": "order.recorded",
    "customers.lifecycle_on_order_updated": "order.updated",
    "customers.lifecycle_on_order_status": "order.status_changed",
    "customers.lifecycle_on_return": "return.applied",
}


def customers_in_every_stage(db: Database, ws: int) -> list[int]:
    """Prospects on the way to new, loyal, advocate, lapsed; one already settled; one merged away."""
    clock.freeze(T0 - timedelta(days=400))
    with db.unit_of_work() as session:
        ids = ensure_customers(session, ws, [f"x-{i}" for i in range(7)])
    c = [ids[f"x-{i}"] for i in range(7)]
    clock.freeze(T0)
    add_order(db, ws, c[0], "o-0", "20", T0 - timedelta(days=2))  # new
    for i in range(6):
        add_order(db, ws, c[1], f"o-1-{i}", "30", T0 - timedelta(days=40 - 7 * i))  # loyal
        add_order(db, ws, c[2], f"o-2-{i}", "30", T0 - timedelta(days=40 - 7 * i))  # advocate, with a review
    add_event(db, ws, c[2], "e-2", "review_posted", T0 - timedelta(days=5))
    add_order(db, ws, c[3], "o-3", "20", T0 - timedelta(days=300))  # lapsed
    add_order(db, ws, c[4], "o-4", "20", T0 - timedelta(days=3))
    with db.unit_of_work() as session:
        lifecycle.recompute_customer(session, ws, c[4])  # "new" already: the jobs change nothing for c[4]
        merge_customers(session, ws, c[5], c[6], actor="test")
    return c


@pytest.mark.parametrize("task", sorted(TASKS))
def test_batches_match_single_jobs(db: Database, tenant: Tenant, task: str) -> None:
    ws = tenant.workspace_id
    c = customers_in_every_stage(db, ws)
    rng = random.Random(task)
    picks = [c[3], c[0], c[1], c[0], c[6], c[2], c[4], c[1]] + [rng.choice(c) for _ in range(6)]
    payloads: list[dict[str, object]] = [{"customer_id": cid, "order_id": i} for i, cid in enumerate(picks)]
    payloads.insert(3, {"order_id": 99})  # no customer: nothing to do
    jobs = [job_context(task, ws, p, event_type=TASKS[task], when=T0, event_id=i + 1) for i, p in enumerate(payloads)]
    after = assert_same_effects(db, jobs)
    stages = {r["id"]: r["lifecycle_stage"] for r in after["customers"]}
    assert [stages[cid] for cid in c[:5]] == ["new", "loyal", "advocate", "lapsed", "new"]
    entered = [e["payload"] for e in after["domain_events"] if e["type"] == "customer.stage_entered"]
    assert {e["customer_id"] for e in entered} >= {c[0], c[1], c[2], c[3]}


def test_every_activity_task_has_the_batch_form() -> None:
    from patronage.customers import tasks
    from patronage.kit.jobs.registry import REGISTRY

    assert {name: REGISTRY.tasks[name].batch_fn for name in TASKS} == dict.fromkeys(
        TASKS, tasks.lifecycle_on_activities)
