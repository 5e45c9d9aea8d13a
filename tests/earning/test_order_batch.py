"""The batch forms of ``earning.order_recorded`` and ``earning.customer_created`` have exactly the effects
of their single handlers run one job after the other.

Each scenario runs twice, in two workspaces fed the same orders: in one, every job alone with the single
handler (as the worker runs them unbatched); in the other, the same job sequence through the batch
handler in chunks (the contexts built as the worker builds them). The two ledgers, limit counters,
audit rows, ``points.earned`` events and the jobs those events enqueued must be identical.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from patronage.earning import tasks
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job
from patronage.kit.jobs.registry import REGISTRY, JobContext
from patronage.ledger import service as ledger
from tests.conftest import Tenant, make_tenant
from tests.earning.conftest import publish, send_order
from tests.earning.snapshots import ledger_snapshot
from tests.ledger.conftest import assert_doctor_ok, set_program

NOW = datetime(2024, 3, 20, 12, tzinfo=UTC)
FRIDAY = datetime(2024, 3, 1, tzinfo=UTC)
ORDER_TASK = "earning.order_recorded"
RULES: dict[str, Any] = {"stacking": "multiply", "rules": [
    {"key": "base", "effect": {"type": "per_currency", "points": 1}},
    {"key": "shoes", "effect": {"type": "multiplier", "factor": 2, "lines": {"categories": ["shoes"]}}},
    {"key": "weekend", "when": {"time": {"days": ["sat", "sun"]}}, "effect": {"type": "multiplier", "factor": 2}},
    {"key": "welcome", "when": {"first_order": True}, "effect": {"type": "fixed", "points": 100}},
    {"key": "big", "when": {"field": "order.net", "op": "gte", "value": 100},
     "effect": {"type": "fixed", "points": 25}, "limits": {"per_customer": {"times": 2, "period": "month"}}},
    {"key": "capped", "effect": {"type": "per_item", "points": 3},
     "limits": {"per_customer": [{"points": 10, "period": "week"}]}},
    {"key": "promo", "effect": {"type": "fixed", "points": 10}, "limits": {"budget": 35}},
]}
_slugs = itertools.count()


@dataclass(frozen=True)
class PlannedOrder:
    customer: int
    day: int  # days after Friday 1 March 2024 (so some fall on a weekend)
    hour: int
    amount: int
    shoes: bool
    quantity: int
    status: str  # "paid", "pending" (not earning yet) or "cancel" (cancelled before its job runs)


def _workspace(client: TestClient, db: Database, *, tiers: bool, expiry: str = "after_earning") -> Tenant:
    tenant = make_tenant(db, f"batch-{next(_slugs)}")
    publish(client, tenant, RULES)
    set_program(db, tenant.workspace_id, return_window_days=14, expiry_policy=expiry, expiry_months=12,
                allow_negative_balance=True)
    if tiers:  # everybody holds the base tier, whose multiplier applies to every multipliable rule
        r = client.post("/api/v1/tiers", headers=tenant.headers,
                        json={"name": "Member", "threshold": "0", "earning_multiplier": "1.5"})
        assert r.status_code == 201, r.text
    return tenant


def _feed(client: TestClient, db: Database, tenant: Tenant, orders: Sequence[PlannedOrder]) -> list[JobContext]:
    """Send the orders, cancel those planned so, overdraw customer 0; the earning jobs, as the worker sees them."""
    for n, o in enumerate(orders):
        at = FRIDAY + timedelta(days=o.day, hours=o.hour)
        line = {"sku": f"S{n}", "category": "shoes" if o.shoes else "music", "quantity": o.quantity,
                "unit_price": f"{o.amount}.50"}
        send_order(client, tenant, f"o{n}", [line], customer=f"c{o.customer}", placed_at=at.isoformat(),
                   status="pending" if o.status == "pending" else "paid")
    for n, o in enumerate(orders):
        if o.status == "cancel":
            r = client.post(f"/api/v1/orders/o{n}/status", headers=tenant.headers, json={"status": "cancelled"})
            assert r.status_code == 200, r.text
    with db.unit_of_work() as s:
        c0 = s.execute(select(Job.payload).where(Job.workspace_id == tenant.workspace_id,
                                                 Job.task == ORDER_TASK).order_by(Job.id).limit(1)).scalar_one()
        ledger.adjust(s, tenant.workspace_id, int(c0["payload"]["customer_id"]), -30, reason="overdraft",
                      actor="test", source_id="overdraft")
        jobs = list(s.scalars(select(Job).where(Job.workspace_id == tenant.workspace_id, Job.task == ORDER_TASK)
                              .order_by(Job.id)))
        return [JobContext(job_id=j.id, task=j.task, workspace_id=j.workspace_id, payload=dict(j.payload or {}),
                           attempt=1, max_attempts=j.max_attempts, scheduled_for=j.run_at) for j in jobs]


def _singles(db: Database, task: str, contexts: Sequence[JobContext]) -> None:
    for ctx in contexts:
        with db.unit_of_work() as s:
            REGISTRY.tasks[task].fn(s, ctx)


def _batches(db: Database, task: str, contexts: Sequence[JobContext], sizes: Sequence[int]) -> None:
    batch_fn = REGISTRY.tasks[task].batch_fn
    assert batch_fn is not None
    at, sizes = 0, list(sizes) or [len(contexts)]
    for size in itertools.cycle(sizes):
        if at >= len(contexts):
            break
        with db.unit_of_work() as s:
            batch_fn(s, contexts[at:at + size])
        at += size


def _compare(client: TestClient, db: Database, orders: Sequence[PlannedOrder], *, pre: Sequence[int],
             stream: Sequence[int], sizes: Sequence[int], tiers: bool, expiry: str = "after_earning") -> None:
    """``pre`` (job indexes) earn alone first in both workspaces; then ``stream`` runs alone in one, in
    batches of ``sizes`` in the other."""
    clock.freeze(NOW)
    alone, batched = _workspace(client, db, tiers=tiers, expiry=expiry), _workspace(client, db, tiers=tiers,
                                                                                    expiry=expiry)
    jobs_alone, jobs_batched = _feed(client, db, alone, orders), _feed(client, db, batched, orders)
    _singles(db, ORDER_TASK, [jobs_alone[i] for i in [*pre, *stream]])
    _singles(db, ORDER_TASK, [jobs_batched[i] for i in pre])
    _batches(db, ORDER_TASK, [jobs_batched[i] for i in stream], sizes)
    with db.unit_of_work(read_only=True) as s:
        expected, got = ledger_snapshot(s, alone.workspace_id), ledger_snapshot(s, batched.workspace_id)
    for part in expected:
        assert got[part] == expected[part], part
    assert_doctor_ok(db)


def test_the_worker_knows_the_batch_forms() -> None:
    assert REGISTRY.tasks[ORDER_TASK].batch_fn is tasks.orders_recorded
    assert REGISTRY.tasks["earning.customer_created"].batch_fn is tasks.customers_created


def test_a_batch_earns_exactly_what_the_jobs_earn_one_by_one(client: TestClient, db: Database) -> None:
    orders = [
        PlannedOrder(0, 0, 10, 120, True, 2, "paid"),  # first order, big basket, shoes, overdraft covered
        PlannedOrder(0, 1, 11, 130, False, 1, "paid"),  # Saturday: weekend x2; second "big" of March
        PlannedOrder(1, 2, 9, 40, False, 3, "paid"),
        PlannedOrder(0, 3, 8, 150, False, 1, "paid"),  # third big basket of March: no bonus
        PlannedOrder(1, 9, 12, 200, True, 1, "paid"),  # inside the return window: pending
        PlannedOrder(2, 4, 12, 60, False, 1, "cancel"),
        PlannedOrder(2, 5, 12, 70, False, 1, "pending"),
        PlannedOrder(2, 6, 12, 80, False, 2, "paid"),  # c2's first order earning (the cancelled one is not first)
        PlannedOrder(3, 7, 12, 10, False, 1, "paid"),
    ]
    # Job 3 earned alone before the batches; jobs 1 and 4 come twice (a job run again after a lost lease).
    _compare(client, db, orders, pre=[3], stream=[0, 1, 1, 2, 3, 4, 5, 6, 7, 4, 8], sizes=[4, 7], tiers=False)


def test_tier_multipliers_and_one_big_batch(client: TestClient, db: Database) -> None:
    orders = [PlannedOrder(n % 3, n, 12, 30 + 20 * n, n % 2 == 0, 1 + n % 2, "paid") for n in range(8)]
    _compare(client, db, orders, pre=[], stream=list(range(8)), sizes=[8], tiers=True)


def test_an_inactivity_deadline_falls_back_to_one_order_at_a_time(client: TestClient, db: Database) -> None:
    # Orders from 2023 under "expire after 1 month of inactivity": the second earning of c0 finds its account
    # past the deadline set by the first, which ``earn`` settles (expires) before crediting.
    orders = [PlannedOrder(0, -300, 12, 50, False, 1, "paid"), PlannedOrder(1, -290, 12, 60, False, 1, "paid"),
              PlannedOrder(0, -200, 12, 70, False, 1, "paid")]
    _compare(client, db, orders, pre=[], stream=[0, 1, 2], sizes=[3], tiers=False, expiry="after_inactivity")


def test_a_batch_costs_the_same_statements_whatever_its_size(client: TestClient, db: Database) -> None:
    clock.freeze(NOW)
    counts = []
    for size in (3, 12):
        tenant = _workspace(client, db, tiers=False)
        contexts = _feed(client, db, tenant, [PlannedOrder(n, n % 7, 12, 110, False, 1, "paid") for n in range(size)])
        statements: list[str] = []

        def count(*args: Any, sink: list[str] = statements) -> None:
            sink.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            _batches(db, ORDER_TASK, contexts, [size])
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        # SQLite: SQLAlchemy inserts rows one by one where their generated ids must come back in order (the
        # events of kit.jobs.record_events_bulk); PostgreSQL sends them in one statement.
        per_row = db.engine.dialect.name == "sqlite"
        counts.append(sum(1 for sql in statements if not (per_row and sql.startswith("INSERT INTO domain_events"))))
    assert counts[0] == counts[1], counts


orders_strategy = st.lists(st.builds(
    PlannedOrder, customer=st.integers(0, 3), day=st.integers(0, 18), hour=st.integers(0, 23),
    amount=st.integers(1, 160), shoes=st.booleans(), quantity=st.integers(1, 3),
    status=st.sampled_from(["paid", "paid", "paid", "pending", "cancel"]),
), min_size=1, max_size=9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=orders_strategy, data=st.data())
def test_random_batches_match_the_single_handler(
    client: TestClient, db: Database, orders: list[PlannedOrder], data: st.DataObject
) -> None:
    indexes = list(range(len(orders)))
    pre = data.draw(st.lists(st.sampled_from(indexes), max_size=2, unique=True), label="pre")
    repeats = data.draw(st.lists(st.sampled_from(indexes), max_size=3), label="repeats")
    sizes = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=3), label="sizes")
    tiers = data.draw(st.booleans(), label="tiers")
    _compare(client, db, orders, pre=pre, stream=sorted(indexes + repeats), sizes=sizes, tiers=tiers)


def test_signup_batches_match_the_single_handler(client: TestClient, db: Database) -> None:
    clock.freeze(NOW)
    rules = {"rules": [{"key": "signup", "trigger": "signup", "effect": {"type": "fixed", "points": 50},
                        "limits": {"budget": 120}}]}
    contexts: list[list[JobContext]] = []
    tenants = [make_tenant(db, f"signup-{next(_slugs)}") for _ in range(2)]
    for tenant in tenants:
        publish(client, tenant, rules)
        for n in range(4):
            r = client.post("/api/v1/customers", headers=tenant.headers, json={"external_id": f"s{n}"})
            assert r.status_code == 201, r.text
        with db.unit_of_work() as s:
            jobs = list(s.scalars(select(Job).where(Job.workspace_id == tenant.workspace_id,
                                                    Job.task == "earning.customer_created").order_by(Job.id)))
            contexts.append([JobContext(job_id=j.id, task=j.task, workspace_id=j.workspace_id,
                                        payload=dict(j.payload or {}), attempt=1, max_attempts=j.max_attempts,
                                        scheduled_for=j.run_at) for j in jobs])
    _singles(db, "earning.customer_created", contexts[0])
    _batches(db, "earning.customer_created", contexts[1], [3])
    with db.unit_of_work(read_only=True) as s:
        expected, got = ledger_snapshot(s, tenants[0].workspace_id), ledger_snapshot(s, tenants[1].workspace_id)
    assert got == expected
    assert [t[5] for t in got["transactions"]] == [50, 50, 20]  # the budget caps the third signup, stops the fourth


@pytest.mark.parametrize("status", ["pending", "cancelled"])
def test_orders_that_do_not_earn_yet_lock_nothing(client: TestClient, db: Database, status: str) -> None:
    tenant = _workspace(client, db, tiers=False)
    send_order(client, tenant, "p1", [{"sku": "A", "unit_price": "10"}], status="pending")
    if status == "cancelled":
        client.post("/api/v1/orders/p1/status", headers=tenant.headers, json={"status": "cancelled"})
    with db.unit_of_work() as s:
        job = s.scalars(select(Job).where(Job.workspace_id == tenant.workspace_id, Job.task == ORDER_TASK)).one()
        ctx = JobContext(job_id=job.id, task=job.task, workspace_id=job.workspace_id, payload=dict(job.payload),
                         attempt=1, max_attempts=job.max_attempts, scheduled_for=job.run_at)
    _batches(db, ORDER_TASK, [ctx], [1])
    with db.unit_of_work(read_only=True) as s:
        snapshot = ledger_snapshot(s, tenant.workspace_id)
    assert snapshot["accounts"] == [] and snapshot["transactions"] == []


def test_concurrent_batches_earn_each_order_once(client: TestClient, db: Database) -> None:
    """Two workers' batches over the same customers (and a job both claimed, as after a lost lease) lock
    accounts in one order: no deadlock, every order earns once, limits hold, the ledger balances."""
    import threading

    clock.freeze(NOW)
    tenant = _workspace(client, db, tiers=False)
    orders = [PlannedOrder(n % 5, n % 19, 12, 90 + n, n % 3 == 0, 1, "paid") for n in range(30)]
    contexts = _feed(client, db, tenant, orders)
    halves = [contexts[0::2] + contexts[1:2], contexts[1::2]]
    errors: list[BaseException] = []

    def work(part: list[JobContext]) -> None:
        try:
            _batches(db, ORDER_TASK, sorted(part, key=lambda c: c.job_id), [4])
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(part,)) for part in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with db.unit_of_work(read_only=True) as s:
        snapshot = ledger_snapshot(s, tenant.workspace_id)
    earned = [t[4] for t in snapshot["transactions"] if t[2] == "earn"]
    assert sorted(earned) == sorted(f"o{n}" for n in range(30))
    big = {(t[0], t[8].strftime("%Y-%m")): 0 for t in snapshot["transactions"] if t[2] == "earn"}
    for t in snapshot["transactions"]:
        if t[2] == "earn" and any(r["key"] == "big" for r in t[9]["rules"]):
            big[(t[0], t[8].strftime("%Y-%m"))] += 1
    assert max(big.values()) == 2  # "twice a month" for every customer, however the batches interleaved
    usage = {(who, period): times for key, who, period, _, times in snapshot["usage"] if key == "big"}
    assert usage == {k: v for k, v in big.items() if v}
    assert_doctor_ok(db)


def test_the_worker_drains_to_the_same_ledger_with_or_without_batches(
    client: TestClient, db: Database, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through the real worker: the same orders drained with the earning batch forms and with
    them switched off leave the same ledger."""
    from dataclasses import replace

    from patronage.kit.jobs.worker import Worker

    clock.freeze(NOW)
    orders = [PlannedOrder(n % 4, n % 12, 9 + n % 10, 40 + 9 * n, n % 3 == 0, 1 + n % 2,
                           "cancel" if n == 5 else "paid") for n in range(14)]
    batched = _workspace(client, db, tiers=False)
    _feed(client, db, batched, orders)
    spec, sizes = REGISTRY.tasks[ORDER_TASK], []

    def counted(session: Any, contexts: Sequence[JobContext]) -> None:
        sizes.append(len(contexts))
        assert spec.batch_fn is not None
        spec.batch_fn(session, contexts)

    monkeypatch.setitem(REGISTRY.tasks, ORDER_TASK, replace(spec, batch_fn=counted))
    Worker(db, settings).drain()
    assert sizes and max(sizes) > 1, sizes  # the worker did hand the earning jobs over in batches
    alone = _workspace(client, db, tiers=False)
    _feed(client, db, alone, orders)
    monkeypatch.setitem(REGISTRY.tasks, ORDER_TASK, replace(spec, batch_fn=None))
    monkeypatch.setitem(REGISTRY.tasks, "earning.customer_created",
                        replace(REGISTRY.tasks["earning.customer_created"], batch_fn=None))
    Worker(db, settings).drain()
    with db.unit_of_work(read_only=True) as s:
        expected, got = ledger_snapshot(s, alone.workspace_id), ledger_snapshot(s, batched.workspace_id)
    assert sum(1 for t in got["transactions"] if t[2] == "earn") == len(orders) - 1  # all but the cancelled
    for part in expected:
        assert got[part] == expected[part], part
    assert_doctor_ok(db)
