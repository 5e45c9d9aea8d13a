"""Coupons at checkout: issue, validate, consume (at most ``max_uses`` times, idempotent per order),
release (a cancelled order gives its use back), and expire (optionally refunding the reward's points).

Lock order: the customer's point account (when the coupon or the order names a customer), then the
coupon row, which the conditional UPDATE in ``CouponRepository.take_use`` locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import NotFound, field_error
from patronage.kit.jobs import record_event
from patronage.ledger import service as ledger
from patronage.rewards import repository as repo
from patronage.rewards.errors import CouponNotFound, CouponNotUsable
from patronage.rewards.models import Coupon, CouponUse, Redemption, Reward
from patronage.rewards.rules import (
    CouponTerms,
    ExpiredCouponPolicy,
    coupon_problem,
    discount_amount,
    generate_codes,
    normalise_code,
)


# ---- issuing --------------------------------------------------------------------------------------------
def fresh_codes(session: Session, workspace_id: int, count: int, *, prefix: str = "") -> list[str]:
    """``count`` new codes, none already used in the workspace (checked; the unique index backs it)."""
    coupons = repo.CouponRepository(session, workspace_id)
    codes = generate_codes(count, prefix=prefix)
    clashes = coupons.existing_codes(codes)
    while clashes:  # ~2^-59 per code: practically never
        codes = [c for c in codes if c not in clashes] + generate_codes(len(clashes), prefix=prefix, taken=codes)
        clashes = coupons.existing_codes(codes)
    return codes


def issue_for_reward(session: Session, workspace_id: int, reward: Reward, redemption: Redemption) -> Coupon:
    expires = redemption.redeemed_at + timedelta(days=reward.coupon_valid_days) if reward.coupon_valid_days else None
    return repo.CouponRepository(session, workspace_id).new(
        code=fresh_codes(session, workspace_id, 1)[0], origin="reward", reward_id=reward.id,
        redemption_id=redemption.id, customer_id=redemption.customer_id, discount_kind=reward.kind,
        value=reward.value, currency=reward.currency, min_order_amount=reward.min_order_amount, sku=reward.sku,
        max_uses=1, used_count=0, status="active", valid_from=None, expires_at=expires,
    )


def get_by_code(session: Session, workspace_id: int, code: str) -> Coupon:
    coupon = repo.CouponRepository(session, workspace_id).by_code(normalise_code(code))
    if coupon is None:
        raise CouponNotFound(f"no coupon {normalise_code(code)!r}")
    return coupon


# ---- checking ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    code: str
    coupon: Coupon | None
    reason: str | None
    discount: Decimal

    @property
    def valid(self) -> bool:
        return self.coupon is not None and self.reason is None


def _terms(coupon: Coupon) -> CouponTerms:
    return CouponTerms(
        status=coupon.status, valid_from=coupon.valid_from, expires_at=coupon.expires_at, max_uses=coupon.max_uses,
        used_count=coupon.used_count, per_customer_limit=coupon.per_customer_limit, customer_id=coupon.customer_id,
        min_order_amount=coupon.min_order_amount, currency=coupon.currency,
    )


def _problem(
    session: Session, workspace_id: int, coupon: Coupon, *, order_amount: Decimal, currency: str | None,
    customer_id: int | None, now: datetime,
) -> str | None:
    if coupon.promotion_id is not None:
        promotion = repo.PromotionRepository(session, workspace_id).get(coupon.promotion_id)
        if promotion is None or not promotion.active:
            return "inactive"
    uses = 0
    who = customer_id if customer_id is not None else coupon.customer_id
    if coupon.per_customer_limit is not None and who is not None:
        use_repo = repo.CouponUseRepository(session, workspace_id)
        uses = (use_repo.uses_by_customer_in_promotion(coupon.promotion_id, who) if coupon.promotion_id
                else use_repo.uses_by_customer(coupon.id, who))
    return coupon_problem(_terms(coupon), now=now, order_amount=order_amount, currency=currency,
                          customer_id=customer_id, uses_by_customer=uses)


def _customer(session: Session, workspace_id: int, customer_id: int | None) -> None:
    if customer_id is not None and not repo.customer_exists(session, workspace_id, customer_id):
        raise field_error("customer_id", f"customer {customer_id} does not exist")


def validate(
    session: Session, workspace_id: int, *, code: str, order_amount: Decimal, currency: str | None = None,
    customer_id: int | None = None,
) -> Check:
    """Would this coupon apply to this order? Changes nothing."""
    code = normalise_code(code)
    _customer(session, workspace_id, customer_id)
    coupon = repo.CouponRepository(session, workspace_id).by_code(code)
    if coupon is None:
        return Check(code, None, "not_found", Decimal("0.00"))
    reason = _problem(session, workspace_id, coupon, order_amount=order_amount, currency=currency,
                      customer_id=customer_id, now=utcnow())
    return Check(code, coupon, reason, discount_amount(coupon.discount_kind, coupon.value, order_amount))


# ---- consuming --------------------------------------------------------------------------------------------
def consume(
    session: Session, workspace_id: int, *, code: str, order_ref: str, order_amount: Decimal,
    currency: str | None = None, customer_id: int | None = None, actor: str,
) -> tuple[CouponUse, Coupon, bool]:
    """Use the coupon on an order. Returns (use, coupon, replayed): the same order again is a replay.

    Raises ``CouponNotFound`` (404) or ``CouponNotUsable`` (409, with ``reason``).
    """
    code = normalise_code(code)
    _customer(session, workspace_id, customer_id)
    coupons = repo.CouponRepository(session, workspace_id)
    uses = repo.CouponUseRepository(session, workspace_id)
    coupon = coupons.by_code(code)
    if coupon is None:
        raise CouponNotFound(f"no coupon {code!r}")
    who = customer_id if customer_id is not None else coupon.customer_id
    if who is not None:
        ledger.lock_account(session, workspace_id, who)
    existing = uses.for_order(coupon.id, order_ref)
    if existing is not None and existing.status == "consumed":
        return existing, coupon, True
    now = utcnow()
    session.refresh(coupon)
    reason = _problem(session, workspace_id, coupon, order_amount=order_amount, currency=currency,
                      customer_id=customer_id, now=now)
    if reason is not None:
        raise CouponNotUsable(f"coupon cannot be used: {reason}", reason=reason)
    discount = discount_amount(coupon.discount_kind, coupon.value, order_amount)
    try:
        with session.begin_nested():
            if not coupons.take_use(coupon.id, now):
                raise CouponNotUsable("coupon cannot be used: used_up", reason="used_up")
            if existing is not None:  # released earlier (order cancelled), used again for the same order
                existing.status, existing.consumed_at, existing.released_at = "consumed", now, None
                existing.order_amount, existing.discount, existing.actor = order_amount, discount, actor
                use = existing
            else:
                use = CouponUse(workspace_id=workspace_id, coupon_id=coupon.id, order_ref=order_ref,
                                customer_id=who, order_amount=order_amount, discount=discount, currency=currency,
                                status="consumed", consumed_at=now, actor=actor)
                session.add(use)
            session.flush()
    except IntegrityError:
        # A concurrent request consumed this coupon for the same order first: that use stands, ours undid.
        winner = uses.for_order(coupon.id, order_ref)
        if winner is None:
            raise
        session.refresh(coupon)
        return winner, coupon, True
    session.refresh(coupon)
    record_event(session, workspace_id, "coupon.consumed", {
        "coupon_id": coupon.id, "order_id": order_ref, "customer_id": who, "discount": str(discount),
        "promotion_id": coupon.promotion_id, "reward_id": coupon.reward_id,
    })
    audit(session, workspace_id=workspace_id, actor=actor, action="coupon.consumed", subject_type="coupon",
          subject_id=coupon.id, data={"order_id": order_ref, "discount": str(discount)})
    return use, coupon, False


# ---- releasing --------------------------------------------------------------------------------------------
def _release(session: Session, workspace_id: int, use: CouponUse, *, actor: str, reason: str) -> bool:
    if use.customer_id is not None:
        ledger.lock_account(session, workspace_id, use.customer_id)
    if not repo.CouponUseRepository(session, workspace_id).mark_released(use.id, utcnow()):
        return False  # released already (a concurrent release won)
    session.refresh(use)
    repo.CouponRepository(session, workspace_id).give_back_use(use.coupon_id)
    audit(session, workspace_id=workspace_id, actor=actor, action="coupon.released", subject_type="coupon",
          subject_id=use.coupon_id, data={"order_id": use.order_ref, "reason": reason})
    record_event(session, workspace_id, "coupon.released", {
        "coupon_id": use.coupon_id, "order_id": use.order_ref, "customer_id": use.customer_id, "reason": reason,
    })
    return True


def release(session: Session, workspace_id: int, *, code: str, order_ref: str, actor: str) -> tuple[CouponUse, Coupon]:
    """Give an order's use of the coupon back (the order was cancelled). Idempotent."""
    code = normalise_code(code)
    coupon = repo.CouponRepository(session, workspace_id).by_code(code)
    if coupon is None:
        raise CouponNotFound(f"no coupon {code!r}")
    use = repo.CouponUseRepository(session, workspace_id).for_order(coupon.id, order_ref)
    if use is None:
        raise NotFound(f"coupon {code!r} was not used on order {order_ref!r}")
    _release(session, workspace_id, use, actor=actor, reason="released")
    session.refresh(coupon)
    return use, coupon


def release_for_order(session: Session, workspace_id: int, order_id: int, *, actor: str = "system") -> int:
    """Every coupon a cancelled order used becomes usable again; returns how many were released."""
    order_ref = repo.order_external_id(session, workspace_id, order_id)
    if order_ref is None:
        return 0
    uses = repo.CouponUseRepository(session, workspace_id).consumed_for_order(order_ref)
    return sum(_release(session, workspace_id, use, actor=actor, reason="order_cancelled") for use in uses)


# ---- expiry -------------------------------------------------------------------------------------------------
def expire_due(session: Session, workspace_id: int, *, now: datetime | None = None, limit: int = 500) -> int:
    """Mark active coupons past their date expired; refund the points of unused reward coupons whose
    reward's policy says so. Returns how many coupons expired."""
    now = now or utcnow()
    coupons = repo.CouponRepository(session, workspace_id)
    expired = 0
    for coupon_id, customer_id in coupons.due_to_expire(now, limit):
        if customer_id is not None:
            ledger.lock_account(session, workspace_id, customer_id)
        if not coupons.set_status(coupon_id, "expired", only_unused=False):
            continue
        expired += 1
        coupon = coupons.get(coupon_id)
        assert coupon is not None
        session.refresh(coupon)
        _refund_if_policy(session, workspace_id, coupon)
    return expired


def _refund_if_policy(session: Session, workspace_id: int, coupon: Coupon) -> None:
    if coupon.redemption_id is None or coupon.used_count > 0 or coupon.reward_id is None:
        return
    reward = repo.RewardRepository(session, workspace_id).get(coupon.reward_id)
    redemption = repo.RedemptionRepository(session, workspace_id).get(coupon.redemption_id, for_update=True)
    if reward is None or redemption is None or redemption.status != "issued":
        return
    if reward.expired_coupon_policy != ExpiredCouponPolicy.REFUND or redemption.points <= 0:
        return
    ledger.reverse(session, workspace_id, redemption.customer_id, source_type="reward_redemption",
                   source_id=str(redemption.id), reason=f"coupon for {reward.name} expired unused", actor="system")
    redemption.status = "refunded"
    session.flush()


def new_promotion_coupons(
    session: Session, workspace_id: int, rows: list[dict[str, Any]], *, prefix: str = ""
) -> list[str]:
    """Insert promotion coupons (``rows`` without codes); returns their codes in order."""
    codes = fresh_codes(session, workspace_id, len(rows), prefix=prefix)
    repo.CouponRepository(session, workspace_id).insert_many(
        [{**row, "code": code} for row, code in zip(rows, codes, strict=True)]
    )
    return codes


def custom_code_free(session: Session, workspace_id: int, code: str) -> bool:
    return not repo.CouponRepository(session, workspace_id).existing_codes([code])

