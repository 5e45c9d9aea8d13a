"""Crash safety: ``kill -9`` the server (with or without its job worker) at random points while a shop sends
orders with its own ids, restart it, let the client resend whatever was not acknowledged and then
everything once more. Exactly one order per id, one ``order.recorded`` event, one job per subscriber, none
failed; with the worker, after it drains, one earn transaction per order and every balance what the orders
earned. The ledger's invariants hold (the doctor fixture checks them after the test).

``make test``: 10,000 orders and 5 kill points against the server alone, and 300 orders and 5 kill points
with the worker in the killed process; ``make soak``: 10,000 orders and 50 kill points with the worker.

Kill points are random (printed with their seed; ``PATRONAGE_CRASH_SEED=<seed>`` replays a run): at a
batch boundary, or part-way through a batch — during its transaction, or just after the answer left —
and, when the worker runs along, usually in the middle of some job too.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from patronage.config import Settings
from patronage.events.models import Order
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent, Job, JobStatus
from patronage.kit.jobs.registry import REGISTRY
from patronage.ledger import program
from patronage.ledger.models import LedgerTransaction, PointAccount, TxKind
from tests.battery.server import LiveServer, Zygote
from tests.conftest import Tenant

RULES = {"stacking": "multiply", "rules": [{"key": "base", "name": "1 point per EUR", "trigger": "order",
                                            "effect": {"type": "per_currency", "points": 1, "rounding": "floor"}}]}
PLACED = datetime(2025, 3, 1, 9, tzinfo=UTC)
CUSTOMERS = 20


def order(i: int) -> dict[str, Any]:
    quantity = 1 + i % 3
    return {
        "external_id": f"shop-order-{i:06d}", "customer_external_id": f"shopper-{i % CUSTOMERS:03d}",
        "placed_at": (PLACED + timedelta(seconds=i)).isoformat(),
        "lines": [{"line_id": "1", "sku": f"SKU-{i % 7}", "unit_price": "10.00", "quantity": quantity}],
    }


def points_of(i: int) -> int:
    return 10 * (1 + i % 3)


@dataclass
class KillPlan:
    """Where to kill: before sending batch ``batch`` ("boundary") or ``fraction`` of a batch's usual
    duration after sending it ("mid")."""

    seed: int
    points: list[tuple[int, str, float]] = field(default_factory=list)

    @classmethod
    def random(cls, seed: int, kills: int, batches: int) -> KillPlan:
        rng = random.Random(seed)
        points = [(rng.randrange(batches), rng.choice(["boundary", "mid"]), round(rng.uniform(0.05, 1.2), 2))
                  for _ in range(kills)]
        return cls(seed, sorted(points))


class Client:
    """The shop's side: sends batches, restarts the server after each kill, resends what was not answered."""

    def __init__(self, server: LiveServer, tenant: Tenant) -> None:
        self.server = server
        self.tenant = tenant
        self.kills = 0
        self.unanswered = 0
        self.took = 1.0  # seconds a batch usually takes, for aiming mid-batch kills

    def kill_and_restart(self) -> None:
        self.server.kill()
        self.kills += 1
        self.server.start()

    def send(self, items: list[dict[str, Any]], kill_after: float | None = None) -> Counter[str]:
        """Send one batch until it is answered; ``kill_after``: kill the server that many seconds in."""
        while True:
            timer = threading.Timer(kill_after, self.server.kill) if kill_after is not None else None
            started = time.monotonic()
            try:
                if timer is not None:
                    timer.start()
                with httpx.Client(base_url=self.server.base_url, timeout=300) as http:
                    response = http.post("/api/v1/orders/batch", headers=self.tenant.headers, json={"items": items})
                response.raise_for_status()
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if isinstance(exc, httpx.HTTPStatusError):
                    raise AssertionError(f"batch refused: {exc.response.text[:2000]}") from exc
                self.unanswered += 1
            else:
                self.took = 0.5 * self.took + 0.5 * (time.monotonic() - started)
                if timer is not None:
                    timer.join()  # the kill may still land, after the answer: the next send finds it dead
                    if not self._alive():
                        self.kills += 1
                        self.server.start()
                body = response.json()
                assert body["failed"] == 0, [i for i in body["items"] if i["status"] == "error"][:3]
                return Counter(item["status"] for item in body["items"])
            finally:
                if timer is not None:
                    timer.cancel()
            kill_after = None  # the resend goes through
            if self._alive():
                self.kill_and_restart()  # a transport error without our kill: treat it as a crash too
            else:
                self.kills += 1
                self.server.start()

    def _alive(self) -> bool:
        try:
            return httpx.get(f"{self.server.base_url}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False


def scalar(db: Database, stmt: Any) -> int:
    with db.unit_of_work(read_only=True) as session:
        return int(session.scalar(stmt) or 0)


def wait_for_the_worker(db: Database, timeout: float) -> None:
    """Until no job is running or due (killed jobs come back when their short lease expires)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        busy = scalar(db, select(func.count()).select_from(Job).where(
            (Job.status == JobStatus.RUNNING) | ((Job.status == JobStatus.QUEUED) & (Job.run_at <= now))))
        if busy == 0:
            return
        time.sleep(0.5)
    raise AssertionError("the worker did not drain the queue in time")


def run_crash_test(db: Database, settings: Settings, tenant: Tenant, zygote: Zygote, tmp_path: Path, *,
                   orders: int, batches: int, kills: int, worker: bool) -> None:
    seed = int(os.environ.get("PATRONAGE_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    plan = KillPlan.random(seed, kills, batches)
    print(f"crash test: seed={seed} kill points={plan.points}")  # replay: PATRONAGE_CRASH_SEED=<seed>
    with db.unit_of_work() as session:
        program.update_settings(session, tenant.workspace_id, {"return_window_days": 0}, actor="test")
    server = LiveServer(zygote, settings, tmp_path, worker=worker, PATRONAGE_JOB_LEASE_SECONDS="3")
    server.start()
    try:
        with server.client(headers=tenant.headers) as http:
            created = http.post("/api/v1/earning/rule-sets", json={"name": "program", "document": RULES}).json()
            assert http.post(f"/api/v1/earning/rule-sets/{created['id']}/versions/1/publish").status_code == 200
        items = [order(i) for i in range(orders)]
        size = orders // batches
        client = Client(server, tenant)
        outcomes: Counter[str] = Counter()
        for b in range(batches):
            batch = items[b * size:(b + 1) * size]
            for when, how, _ in plan.points:
                if when == b and how == "boundary":
                    client.kill_and_restart()
            mids = [fraction for when, how, fraction in plan.points if when == b and how == "mid"]
            for fraction in mids:  # each kill interrupts (or just follows) one sending of this batch
                outcomes += client.send(batch, kill_after=fraction * client.took)
            outcomes += client.send(batch)
        replay: Counter[str] = Counter()  # and the client resends everything once more (1,000 a request at most)
        for b in range(batches):
            replay += client.send(items[b * size:(b + 1) * size])
        assert replay == Counter({"unchanged": size * batches}), replay
        assert outcomes["created"] + outcomes["unchanged"] == outcomes.total()
        if worker:
            wait_for_the_worker(db, timeout=max(600.0, orders * 0.5))
        print(f"crash test: {client.kills} kills, {client.unanswered} unanswered sends, outcomes {dict(outcomes)}")
    finally:
        server.stop()
    assert_recorded_once(db, size * batches)
    if worker:
        assert_earned_once(db, size * batches)


def assert_recorded_once(db: Database, orders: int) -> None:
    """Every order, its event and one job per subscriber: each exactly once, none failed."""
    assert scalar(db, select(func.count()).select_from(Order)) == orders
    assert scalar(db, select(func.count(func.distinct(Order.external_id)))) == orders
    recorded = select(func.count()).select_from(DomainEvent).where(DomainEvent.type == "order.recorded")
    assert scalar(db, recorded) == orders
    with db.unit_of_work(read_only=True) as session:
        per_task = Counter(task for task, payload in session.execute(select(Job.task, Job.payload))
                           if (payload or {}).get("type") == "order.recorded")
        bad = session.execute(select(Job.task, Job.status, Job.last_error).where(
            Job.status.notin_([JobStatus.SUCCEEDED, JobStatus.QUEUED]))).all()
    assert bad == [], bad[:5]
    for task in REGISTRY.handler_tasks("order.recorded"):  # one job per order and subscriber, none lost or doubled
        assert per_task.get(task) == orders, (task, per_task.get(task))


def assert_earned_once(db: Database, orders: int) -> None:
    """After the worker drained the queue: one earn transaction per order, balances what the orders earned."""
    with db.unit_of_work(read_only=True) as session:
        earns = session.execute(select(LedgerTransaction.source_id, LedgerTransaction.points).where(
            LedgerTransaction.kind == TxKind.EARN, LedgerTransaction.source_type == "order")).all()
        accounts = session.execute(select(func.sum(PointAccount.available), func.sum(PointAccount.pending),
                                          func.sum(PointAccount.lifetime_earned))).one()
    assert len(earns) == orders and len({source for source, _ in earns}) == orders
    expected = sum(points_of(i) for i in range(orders))
    assert sum(p for _, p in earns) == expected
    assert tuple(int(v or 0) for v in accounts) == (expected, 0, expected)


@pytest.mark.parametrize("orders, batches, kills, worker", [
    # make test: the full load against the server alone (its 70,000 follow-up jobs would keep the worker busy
    # for minutes), then the same with the worker inside the killed process, through to the points earned.
    pytest.param(10_000, 10, 5, False, id="10000-orders-5-kills"),
    pytest.param(300, 10, 5, True, id="300-orders-5-kills-with-worker"),
    pytest.param(10_000, 10, 50, True, id="10000-orders-50-kills-with-worker", marks=pytest.mark.soak),
])
def test_kill_9_during_a_load_of_orders(
    db: Database, settings: Settings, tenant: Tenant, zygote: Zygote, tmp_path: Path,
    orders: int, batches: int, kills: int, worker: bool,
) -> None:
    run_crash_test(db, settings, tenant, zygote, tmp_path, orders=orders, batches=batches, kills=kills,
                   worker=worker)
