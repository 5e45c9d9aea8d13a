"""Contention with real threads on both databases: one single-use coupon, 50 checkouts; a reward with
little stock, many redeemers. Exactly the allowed number succeed; counters never go wrong."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from patronage.kit.db import Database
from patronage.kit.errors import PatronageError
from patronage.rewards import coupons, promotions, service
from patronage.rewards.coupon_schemas import CodeBatchIn, PromotionCreate
from patronage.rewards.doctor import CHECKS
from patronage.rewards.models import Coupon, CouponUse, Reward
from patronage.rewards.rules import RewardKind
from patronage.rewards.schemas import RewardCreate
from tests.conftest import Tenant
from tests.rewards.helpers import give_points, new_customer


def race(n: int, attempt: Callable[[int], str]) -> list[str]:
    """Run ``attempt(i)`` for i in 0..n-1 in n threads released together; returns their outcomes."""
    gate = threading.Barrier(n)

    def run(i: int) -> str:
        gate.wait()
        try:
            return attempt(i)
        except PatronageError as exc:
            return str(exc.extra.get("reason", exc.code))

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def single_use_code(db: Database, ws: int, origin: str) -> str:
    """A reward coupon (bound to its customer, whose account lock also serialises checkouts) or an
    unbound promotion code (only the conditional UPDATE stands between the racers)."""
    with db.unit_of_work() as session:
        if origin == "promotion":
            promotion = promotions.create_promotion(session, ws, PromotionCreate(
                name="Apology", code_type="single_use", discount_kind=RewardKind.FREE_SHIPPING), actor="test")
            return promotions.generate_batch(session, ws, promotion.id, CodeBatchIn(count=1), actor="test")[0]
        customer = new_customer(db, ws, email="race@example.com")
        give_points(db, ws, customer, 500, "seed")
        reward = service.create_reward(session, ws, RewardCreate(name="5 off", kind=RewardKind.FIXED_DISCOUNT,
                                                                 points_cost=500, value=Decimal(5)), actor="test")
        redemption = service.redeem(session, ws, customer, reward.id, request_id="r1", actor="test")
        return session.scalars(select(Coupon.code).where(Coupon.redemption_id == redemption.id)).one()


@pytest.mark.parametrize("origin", ["promotion", "reward"])
def test_fifty_concurrent_consumes_of_one_single_use_coupon(db: Database, tenant: Tenant, origin: str) -> None:
    ws = tenant.workspace_id
    code = single_use_code(db, ws, origin)

    def consume(i: int) -> str:
        with db.unit_of_work() as session:
            coupons.consume(session, ws, code=code, order_ref=f"order-{i}", order_amount=Decimal(30), actor="test")
        return "ok"

    outcomes = race(50, consume)
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) == {"ok", "used_up"}
    with db.unit_of_work(read_only=True) as session:
        coupon = session.scalars(select(Coupon).where(Coupon.code == code)).one()
        uses = session.scalars(select(CouponUse).where(CouponUse.coupon_id == coupon.id)).all()
        assert (coupon.used_count, coupon.status, len(uses)) == (1, "used", 1)
        assert all(f.severity == "ok" for check in CHECKS for f in check(session))


def test_stock_never_goes_negative_under_concurrent_redemptions(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    customers = [new_customer(db, ws, email=f"c{i}@example.com") for i in range(8)]
    for cid in customers:
        give_points(db, ws, cid, 100, f"seed-{cid}")
    with db.unit_of_work() as session:
        reward_id = service.create_reward(session, ws, RewardCreate(
            name="Tote bag", kind=RewardKind.FREE_PRODUCT, sku="TOTE", points_cost=100, stock=3), actor="test").id

    def redeem(i: int) -> str:
        with db.unit_of_work() as session:
            service.redeem(session, ws, customers[i], reward_id, request_id="go", actor="test")
        return "ok"

    outcomes = race(len(customers), redeem)
    assert outcomes.count("ok") == 3 and outcomes.count("out_of_stock") == 5, outcomes
    with db.unit_of_work(read_only=True) as session:
        reward = session.get(Reward, reward_id)
        assert reward is not None and (reward.stock, reward.redeemed_count) == (0, 3)
