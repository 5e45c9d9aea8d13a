"""Contention through the real HTTP stack: a real server process, real client threads, both databases.

- 200 concurrent consumptions of one single-use coupon: exactly one wins; the counter says 1.
- 50 concurrent redemptions against 100 points at 10 each: exactly 10 win, the balance ends at 0 and
  is never negative, neither as sampled during the run nor in the ledger's running sum.
- a redemption, a return's reversal and the expiry job racing on one account: no lost update.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from patronage.config import Settings
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker
from patronage.ledger import maintenance, program
from patronage.ledger import service as ledger
from patronage.ledger.models import AVAILABLE, LedgerEntry, LedgerTransaction, PointAccount, TxKind
from patronage.rewards import promotions, service
from patronage.rewards.coupon_schemas import CodeBatchIn, PromotionCreate
from patronage.rewards.models import Coupon, CouponUse
from patronage.rewards.rules import RewardKind
from patronage.rewards.schemas import RewardCreate
from tests.battery.server import LiveServer, outcome, race, statuses
from tests.conftest import Tenant
from tests.rewards.helpers import give_points, new_customer

LiveServerFactory = Callable[..., LiveServer]


def single_use_code(db: Database, ws: int, origin: str) -> str:
    """An unbound promotion code (only the coupon's conditional UPDATE guards it) or a reward coupon
    (bound to its customer: the account lock serialises checkouts too)."""
    with db.unit_of_work() as session:
        if origin == "promotion":
            promotion = promotions.create_promotion(session, ws, PromotionCreate(
                name="Apology", code_type="single_use", discount_kind=RewardKind.FREE_SHIPPING), actor="test")
            return promotions.generate_batch(session, ws, promotion.id, CodeBatchIn(count=1), actor="test")[0]
    customer = new_customer(db, ws, email="coupon@example.com")
    give_points(db, ws, customer, 500, "seed")
    with db.unit_of_work() as session:
        reward = service.create_reward(session, ws, RewardCreate(
            name="5 off", kind=RewardKind.FIXED_DISCOUNT, points_cost=500, value=Decimal(5)), actor="test")
        redemption = service.redeem(session, ws, customer, reward.id, request_id="r1", actor="test")
        return session.scalars(select(Coupon.code).where(Coupon.redemption_id == redemption.id)).one()


@pytest.mark.parametrize("origin", ["promotion", "reward"])
def test_200_concurrent_consumptions_of_a_single_use_coupon(
    db: Database, tenant: Tenant, live_server: LiveServerFactory, origin: str
) -> None:
    code = single_use_code(db, tenant.workspace_id, origin)
    server = live_server()

    def consume(http: httpx.Client, i: int) -> httpx.Response:
        return http.post("/api/v1/coupons/consume", headers=tenant.headers,
                         json={"code": code, "order_id": f"order-{i}", "order_amount": "30.00"})

    responses = race(200, consume, server.base_url)
    counts = statuses(responses)
    assert counts.get("200") == 1, counts
    assert set(counts) == {"200", "409:coupon_not_usable"}, counts
    assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"used_up"}
    with db.unit_of_work(read_only=True) as session:
        coupon = session.scalars(select(Coupon).where(Coupon.code == code)).one()
        uses = session.scalars(select(CouponUse).where(CouponUse.coupon_id == coupon.id)).all()
        assert (coupon.used_count, coupon.status, len(uses)) == (1, "used", 1)


def available_running_sums(db: Database, ws: int, customer_id: int) -> list[int]:
    """The customer's available balance after each transaction, in commit (id) order, from the entries."""
    with db.unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(LedgerEntry.transaction_id, LedgerEntry.amount)
            .join(PointAccount, PointAccount.id == LedgerEntry.account_id)
            .where(PointAccount.workspace_id == ws, PointAccount.customer_id == customer_id,
                   LedgerEntry.account == AVAILABLE)
            .order_by(LedgerEntry.transaction_id, LedgerEntry.id)
        ).all()
    sums, total, last = [], 0, None
    for transaction_id, amount in rows:
        if last is not None and transaction_id != last:
            sums.append(total)
        total += amount
        last = transaction_id
    return [*sums, total]


def reward(db: Database, ws: int, cost: int, **fields: Any) -> int:
    with db.unit_of_work() as session:
        return service.create_reward(session, ws, RewardCreate(
            name=f"{cost} points", kind=RewardKind.FREE_PRODUCT, sku="GIFT", points_cost=cost, **fields),
            actor="test").id


class Sampler:
    """Reads the customer's balance over HTTP, as often as it can, while the race runs."""

    def __init__(self, base_url: str, headers: dict[str, str], customer_id: int) -> None:
        self.values: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base_url, headers, customer_id), daemon=True)

    def _run(self, base_url: str, headers: dict[str, str], customer_id: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            while not self._stop.is_set():
                response = http.get(f"/api/v1/customers/{customer_id}/points", headers=headers)
                if response.status_code == 200:
                    self.values.append(response.json()["available"])

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_50_concurrent_redemptions_never_overdraw(db: Database, tenant: Tenant, live_server: LiveServerFactory) -> None:
    ws = tenant.workspace_id
    customer = new_customer(db, ws, email="ten@example.com")
    give_points(db, ws, customer, 100, "seed")
    reward_id = reward(db, ws, 10)
    server = live_server()

    def redeem(http: httpx.Client, i: int) -> httpx.Response:
        return http.post(f"/api/v1/customers/{customer}/rewards/{reward_id}/redeem", headers=tenant.headers,
                         json={"request_id": f"checkout-{i}"})

    with Sampler(server.base_url, tenant.headers, customer) as sampler:
        responses = race(50, redeem, server.base_url)
    counts = statuses(responses)
    assert counts.get("201") == 10, counts
    # The rest found no points left, or were over the per-customer redemption rate limit (429).
    assert set(counts) <= {"201", "409:insufficient_points", "429:rate_limited"}, counts
    assert counts.get("409:insufficient_points", 0) >= 1, counts
    assert sampler.values and min(sampler.values) >= 0, sampler.values
    sums = available_running_sums(db, ws, customer)
    assert min(sums) >= 0 and sums[-1] == 0, sums
    with db.unit_of_work(read_only=True) as session:
        balance = ledger.balance(session, ws, customer)
        spends = session.scalars(select(LedgerTransaction).where(
            LedgerTransaction.customer_id == customer, LedgerTransaction.kind == TxKind.SPEND)).all()
    assert (balance.available, balance.lifetime_spent, len(spends)) == (0, 100, 10)


ORDER_LINES = [{"line_id": "1", "sku": "BOOT", "unit_price": "80.00", "quantity": 1},
               {"line_id": "2", "sku": "LACE", "unit_price": "20.00", "quantity": 1}]
RULES = {"stacking": "multiply", "rules": [{"key": "base", "name": "1 point per EUR", "trigger": "order",
                                            "effect": {"type": "per_currency", "points": 1, "rounding": "floor"}}]}


def test_redemption_return_and_expiry_race_on_one_account(
    db: Database, settings: Settings, tenant: Tenant, live_server: LiveServerFactory
) -> None:
    """Three writers on one account at once: redemptions (HTTP), a return whose reversal the worker
    posts, and the expiry job. Whatever order they land in, every effect is posted exactly once and
    the cached balance equals the entries (the doctor fixture checks that after the test)."""
    ws = tenant.workspace_id
    with db.unit_of_work() as session:
        program.update_settings(session, ws, {"return_window_days": 0}, actor="test")
    server = live_server()
    with httpx.Client(base_url=server.base_url, timeout=120, headers=tenant.headers) as http:
        created = http.post("/api/v1/earning/rule-sets", json={"name": "program", "document": RULES})
        assert created.status_code == 201, created.text
        published = http.post(f"/api/v1/earning/rule-sets/{created.json()['id']}/versions/1/publish")
        assert published.status_code == 200, published.text
        order = http.post("/api/v1/orders", json={
            "external_id": "race-1", "customer_external_id": "racer", "placed_at": utcnow().isoformat(),
            "lines": ORDER_LINES})
        assert order.status_code == 201, order.text
    customer = order.json()["result"]["customer_id"]
    Worker(db, settings, name="setup").drain()  # the order earns 100 points
    now = utcnow()
    with db.unit_of_work() as session:  # 50 more that expired a minute ago, not yet settled
        ledger.earn(session, ws, customer, 50, source_type="test", source_id="old", reason="old", actor="test",
                    earned_at=now - timedelta(days=400), expires_at=now - timedelta(minutes=1))
        assert ledger.balance(session, ws, customer).available == 150
    reward_id = reward(db, ws, 20)
    errors: list[BaseException] = []
    results: dict[str, list[str]] = {"redeem": [], "return": []}
    gate = threading.Barrier(3, timeout=60)

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                gate.wait()
                fn()
            except BaseException as exc:  # re-raised below, in the test's thread
                errors.append(exc)
        return run

    def redeem() -> None:
        with httpx.Client(base_url=server.base_url, timeout=120, headers=tenant.headers) as http:
            for i in range(4):
                r = http.post(f"/api/v1/customers/{customer}/rewards/{reward_id}/redeem", json={"request_id": f"r{i}"})
                results["redeem"].append(outcome(r))

    def give_back() -> None:
        with httpx.Client(base_url=server.base_url, timeout=120, headers=tenant.headers) as http:
            r = http.post("/api/v1/returns", json={"external_id": "ret-1", "order_external_id": "race-1",
                                                   "lines": [{"line_id": "2", "quantity": 1}]})
            results["return"].append(outcome(r))
        worker = Worker(db, settings, name="racer")
        for _ in range(50):
            worker.run_once()
            time.sleep(0.01)

    def expire() -> None:
        for _ in range(20):
            with db.unit_of_work() as session:
                maintenance.settle_due(session, ws)
            time.sleep(0.005)

    threads = [threading.Thread(target=guard(fn)) for fn in (redeem, give_back, expire)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    Worker(db, settings, name="after").drain()
    assert results["return"] == ["201"], results
    wins = results["redeem"].count("201")
    assert set(results["redeem"]) <= {"201", "409:insufficient_points"}, results
    with db.unit_of_work(read_only=True) as session:
        txns = session.scalars(select(LedgerTransaction).where(LedgerTransaction.customer_id == customer)).all()
        kinds = [t.kind for t in txns]
        balance = ledger.balance(session, ws, customer)
    assert kinds.count(TxKind.EXPIRE) == 1  # the stale 50 expired exactly once, whoever got there first
    assert kinds.count(TxKind.REVERSE) == 1  # the returned line's 20 points, exactly once
    assert kinds.count(TxKind.SPEND) == wins
    expired = -sum(t.points for t in txns if t.kind == TxKind.EXPIRE)
    reversed_points = -sum(t.points for t in txns if t.kind == TxKind.REVERSE)
    assert (expired, reversed_points) == (50, 20)
    # 100 earned - 20 returned - 20 per redemption; the expired 50 were never spendable.
    assert wins == 4
    assert balance.available + balance.pending - balance.clawback_owed == 100 - 20 - 20 * wins
    assert sum(t.points for t in txns) == balance.available + balance.pending - balance.clawback_owed
