"""Queries for rewards, redemptions, coupons, coupon uses, promotions and fulfilments (workspace-scoped).

Counters change only through the conditional, relative UPDATEs here: ``stock = stock - 1 WHERE stock > 0``,
``used_count = used_count + 1 WHERE used_count < max_uses``; the affected row count says who won.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from patronage.customers.activity_repository import TimelineKey, before_clause
from patronage.customers.models import Customer
from patronage.events.models import Order
from patronage.kit.repository import WorkspaceRepository
from patronage.rewards.models import Coupon, CouponUse, Fulfilment, Promotion, Redemption, Reward

TIMELINE_KIND = "reward"


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


def customer_exists(session: Session, workspace_id: int, customer_id: int) -> bool:
    stmt = select(Customer.id).where(Customer.workspace_id == workspace_id, Customer.id == customer_id)
    return session.scalar(stmt) is not None


def order_external_id(session: Session, workspace_id: int, order_id: int) -> str | None:
    stmt = select(Order.external_id).where(Order.workspace_id == workspace_id, Order.id == order_id)
    return session.scalar(stmt)


class RewardRepository(WorkspaceRepository[Reward]):
    model = Reward

    def listing(self, *, active: bool | None = None) -> Any:
        stmt = self.select()
        if active is not None:
            stmt = stmt.where(Reward.active.is_(active))
        return stmt

    def offered(self, now: datetime) -> list[Reward]:
        stmt = self.select().where(
            Reward.active.is_(True),
            or_(Reward.valid_from.is_(None), Reward.valid_from <= now),
            or_(Reward.valid_until.is_(None), Reward.valid_until > now),
        )
        return list(self.session.scalars(stmt.order_by(Reward.points_cost, Reward.id)))

    def take_stock(self, reward_id: int) -> bool:
        """One unit out of stock (and one more redeemed); False when none is left."""
        stmt = (
            update(Reward)
            .where(Reward.workspace_id == self.workspace_id, Reward.id == reward_id,
                   or_(Reward.stock.is_(None), Reward.stock > 0))
            .values(stock=case((Reward.stock.is_(None), None), else_=Reward.stock - 1),
                    redeemed_count=Reward.redeemed_count + 1)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(self.session.execute(stmt)) == 1

    def return_stock(self, reward_id: int) -> None:
        stmt = (
            update(Reward)
            .where(Reward.workspace_id == self.workspace_id, Reward.id == reward_id)
            .values(stock=case((Reward.stock.is_(None), None), else_=Reward.stock + 1),
                    redeemed_count=Reward.redeemed_count - 1)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(stmt)

    def restock(self, reward_id: int, delta: int) -> bool:
        """``stock = stock + delta`` unless that would go below 0 (or the stock is unlimited)."""
        stmt = (
            update(Reward)
            .where(Reward.workspace_id == self.workspace_id, Reward.id == reward_id,
                   Reward.stock.is_not(None), Reward.stock + delta >= 0)
            .values(stock=Reward.stock + delta)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(self.session.execute(stmt)) == 1

    def redeemed_counts(self, customer_id: int, reward_ids: Iterable[int] | None = None) -> dict[int, int]:
        stmt = (
            select(Redemption.reward_id, func.count())
            .where(Redemption.workspace_id == self.workspace_id, Redemption.customer_id == customer_id,
                   Redemption.status != "cancelled")
            .group_by(Redemption.reward_id)
        )
        if reward_ids is not None:
            stmt = stmt.where(Redemption.reward_id.in_(list(reward_ids)))
        return {rid: int(n) for rid, n in self.session.execute(stmt).all()}


class RedemptionRepository(WorkspaceRepository[Redemption]):
    model = Redemption

    def by_source(self, customer_id: int, source_type: str, source_id: str) -> Redemption | None:
        stmt = self.select().where(Redemption.customer_id == customer_id, Redemption.source_type == source_type,
                                   Redemption.source_id == source_id)
        return self.session.scalars(stmt).one_or_none()

    def before(self, customer_id: int, cursor: TimelineKey | None, limit: int) -> list[tuple[Redemption, str]]:
        """Timeline page: (redemption, reward name), newest first, strictly before ``cursor``."""
        stmt = (
            select(Redemption, Reward.name)
            .join(Reward, Reward.id == Redemption.reward_id)
            .where(Redemption.workspace_id == self.workspace_id, Redemption.customer_id == customer_id,
                   before_clause(Redemption.redeemed_at, Redemption.id, TIMELINE_KIND, cursor))
            .order_by(Redemption.redeemed_at.desc(), Redemption.id.desc())
            .limit(limit)
        )
        return [(r, name) for r, name in self.session.execute(stmt)]

    def listing(self, *, customer_id: int | None = None, reward_id: int | None = None) -> Any:
        stmt = self.select()
        if customer_id is not None:
            stmt = stmt.where(Redemption.customer_id == customer_id)
        if reward_id is not None:
            stmt = stmt.where(Redemption.reward_id == reward_id)
        return stmt


class PromotionRepository(WorkspaceRepository[Promotion]):
    model = Promotion

    def count_codes(self, promotion_id: int, delta: int) -> None:
        stmt = (
            update(Promotion)
            .where(Promotion.workspace_id == self.workspace_id, Promotion.id == promotion_id)
            .values(codes_generated=Promotion.codes_generated + delta)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(stmt)


class CouponRepository(WorkspaceRepository[Coupon]):
    model = Coupon

    def by_code(self, code: str, *, for_update: bool = False) -> Coupon | None:
        stmt = self.select().where(Coupon.code == code)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def by_redemption(self, redemption_id: int) -> Coupon | None:
        return self.session.scalars(self.select().where(Coupon.redemption_id == redemption_id)).one_or_none()

    def existing_codes(self, codes: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(codes), 500):
            chunk = codes[start : start + 500]
            stmt = select(Coupon.code).where(Coupon.workspace_id == self.workspace_id, Coupon.code.in_(chunk))
            found.update(self.session.scalars(stmt))
        return found

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 1000):
            chunk = [{**r, "workspace_id": self.workspace_id} for r in rows[start : start + 1000]]
            self.session.execute(insert(Coupon), chunk)

    def take_use(self, coupon_id: int, now: datetime) -> bool:
        """The atomic consume: one more use if any is left. Exactly one of N racing callers gets the
        last use: the row lock serialises them and each re-checks ``used_count < max_uses``."""
        exhausted = and_(Coupon.max_uses.is_not(None), Coupon.used_count + 1 >= Coupon.max_uses)
        stmt = (
            update(Coupon)
            .where(
                Coupon.workspace_id == self.workspace_id, Coupon.id == coupon_id, Coupon.status == "active",
                or_(Coupon.max_uses.is_(None), Coupon.used_count < Coupon.max_uses),
                or_(Coupon.expires_at.is_(None), Coupon.expires_at > now),
            )
            .values(used_count=Coupon.used_count + 1, status=case((exhausted, "used"), else_=Coupon.status))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(self.session.execute(stmt)) == 1

    def give_back_use(self, coupon_id: int) -> bool:
        stmt = (
            update(Coupon)
            .where(Coupon.workspace_id == self.workspace_id, Coupon.id == coupon_id, Coupon.used_count > 0)
            .values(used_count=Coupon.used_count - 1,
                    status=case((Coupon.status == "used", "active"), else_=Coupon.status))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(self.session.execute(stmt)) == 1

    def set_status(self, coupon_id: int, status: str, *, only_unused: bool = True) -> bool:
        """active -> ``status`` (expired/void) unless used meanwhile."""
        conditions = [Coupon.workspace_id == self.workspace_id, Coupon.id == coupon_id, Coupon.status == "active"]
        if only_unused:
            conditions.append(Coupon.used_count == 0)
        stmt = update(Coupon).where(*conditions).values(status=status).execution_options(synchronize_session=False)
        return _rowcount(self.session.execute(stmt)) == 1

    def due_to_expire(self, now: datetime, limit: int) -> list[tuple[int, int | None]]:
        """(coupon id, customer id) of active coupons past their date."""
        stmt = (
            select(Coupon.id, Coupon.customer_id)
            .where(Coupon.workspace_id == self.workspace_id, Coupon.status == "active",
                   Coupon.expires_at.is_not(None), Coupon.expires_at <= now)
            .order_by(Coupon.id)
            .limit(limit)
        )
        return [(cid, cust) for cid, cust in self.session.execute(stmt)]

    def move_expiry(self, promotion_id: int, expires_at: datetime) -> None:
        stmt = (
            update(Coupon)
            .where(Coupon.workspace_id == self.workspace_id, Coupon.promotion_id == promotion_id,
                   Coupon.status == "active")
            .values(expires_at=expires_at)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(stmt)

    def first_of_promotion(self, promotion_id: int) -> Coupon | None:
        stmt = self.select().where(Coupon.promotion_id == promotion_id).order_by(Coupon.id).limit(1)
        return self.session.scalars(stmt).first()

    def listing(self, *, promotion_id: int | None = None, customer_id: int | None = None) -> Any:
        stmt = self.select()
        if promotion_id is not None:
            stmt = stmt.where(Coupon.promotion_id == promotion_id)
        if customer_id is not None:
            stmt = stmt.where(Coupon.customer_id == customer_id)
        return stmt


class CouponUseRepository(WorkspaceRepository[CouponUse]):
    model = CouponUse

    def for_order(self, coupon_id: int, order_ref: str) -> CouponUse | None:
        stmt = self.select().where(CouponUse.coupon_id == coupon_id, CouponUse.order_ref == order_ref)
        return self.session.scalars(stmt).one_or_none()

    def mark_released(self, use_id: int, now: datetime) -> bool:
        """consumed -> released, once: the caller that flips it gives the coupon's use back."""
        stmt = (
            update(CouponUse)
            .where(CouponUse.workspace_id == self.workspace_id, CouponUse.id == use_id, CouponUse.status == "consumed")
            .values(status="released", released_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(self.session.execute(stmt)) == 1

    def consumed_for_order(self, order_ref: str) -> list[CouponUse]:
        stmt = self.select().where(CouponUse.order_ref == order_ref, CouponUse.status == "consumed")
        return list(self.session.scalars(stmt.order_by(CouponUse.coupon_id)))

    def uses_by_customer(self, coupon_id: int, customer_id: int) -> int:
        stmt = select(func.count()).where(
            CouponUse.workspace_id == self.workspace_id, CouponUse.coupon_id == coupon_id,
            CouponUse.customer_id == customer_id, CouponUse.status == "consumed",
        )
        return int(self.session.scalar(stmt) or 0)

    def uses_by_customer_in_promotion(self, promotion_id: int, customer_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(CouponUse)
            .join(Coupon, Coupon.id == CouponUse.coupon_id)
            .where(CouponUse.workspace_id == self.workspace_id, Coupon.promotion_id == promotion_id,
                   CouponUse.customer_id == customer_id, CouponUse.status == "consumed")
        )
        return int(self.session.scalar(stmt) or 0)


class FulfilmentRepository(WorkspaceRepository[Fulfilment]):
    model = Fulfilment

    def by_redemption(self, redemption_id: int) -> Fulfilment | None:
        stmt = self.select().where(Fulfilment.redemption_id == redemption_id)
        return self.session.scalars(stmt).one_or_none()

    def listing(self, *, status: str | None = None, customer_id: int | None = None) -> Any:
        stmt = self.select()
        if status is not None:
            stmt = stmt.where(Fulfilment.status == status)
        if customer_id is not None:
            stmt = stmt.where(Fulfilment.customer_id == customer_id)
        return stmt

    def scrub(self, customer_id: int) -> int:
        """Erasure: fulfilment details (addresses, guest names) and notes go."""
        stmt = (
            update(Fulfilment)
            .where(Fulfilment.workspace_id == self.workspace_id, Fulfilment.customer_id == customer_id)
            .values(details={}, note="")
            .execution_options(synchronize_session=False)
        )
        return _rowcount(self.session.execute(stmt))
