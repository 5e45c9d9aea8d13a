"""Read models: listings and the shapes the reward routes return (assembled from several rows)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.kit.pagination import paginate_by_id
from patronage.ledger import service as ledger
from patronage.rewards import repository as repo
from patronage.rewards import service
from patronage.rewards.coupon_schemas import CouponUseOut, CouponValidation
from patronage.rewards.coupons import Check
from patronage.rewards.models import Coupon, CouponUse, Fulfilment, Redemption, Reward
from patronage.rewards.rules import RewardKind
from patronage.rewards.schemas import (
    CouponOut,
    FulfilmentOut,
    LoyaltySummary,
    RedemptionOut,
    RewardOffer,
    RewardOut,
)
from patronage.tiers.views import customer_tier_out

UPCOMING = 3


def redemption_out(session: Session, workspace_id: int, redemption: Redemption) -> RedemptionOut:
    coupon = repo.CouponRepository(session, workspace_id).by_redemption(redemption.id)
    fulfilment = repo.FulfilmentRepository(session, workspace_id).by_redemption(redemption.id)
    out = RedemptionOut.model_validate(redemption)
    out.coupon = CouponOut.of(coupon) if coupon else None
    out.fulfilment = FulfilmentOut.model_validate(fulfilment) if fulfilment else None
    return out


def list_rewards(
    session: Session, workspace_id: int, *, active: bool | None, cursor: str | None, limit: int | None
) -> tuple[list[Reward], str | None]:
    stmt = repo.RewardRepository(session, workspace_id).listing(active=active)
    return paginate_by_id(session, stmt, Reward.id, cursor=cursor, limit=limit)


def list_redemptions(
    session: Session, workspace_id: int, *, customer_id: int | None, reward_id: int | None, cursor: str | None,
    limit: int | None,
) -> tuple[list[RedemptionOut], str | None]:
    stmt = repo.RedemptionRepository(session, workspace_id).listing(customer_id=customer_id, reward_id=reward_id)
    rows, nxt = paginate_by_id(session, stmt, Redemption.id, cursor=cursor, limit=limit)
    return [redemption_out(session, workspace_id, r) for r in rows], nxt


def list_coupons(
    session: Session, workspace_id: int, *, promotion_id: int | None = None, customer_id: int | None = None,
    cursor: str | None, limit: int | None,
) -> tuple[list[CouponOut], str | None]:
    stmt = repo.CouponRepository(session, workspace_id).listing(promotion_id=promotion_id, customer_id=customer_id)
    rows, nxt = paginate_by_id(session, stmt, Coupon.id, cursor=cursor, limit=limit)
    return [CouponOut.of(c) for c in rows], nxt


def list_fulfilments(
    session: Session, workspace_id: int, *, status: str | None, cursor: str | None, limit: int | None
) -> tuple[list[Fulfilment], str | None]:
    stmt = repo.FulfilmentRepository(session, workspace_id).listing(status=status)
    return paginate_by_id(session, stmt, Fulfilment.id, cursor=cursor, limit=limit, descending=False)


def validation_out(check: Check) -> CouponValidation:
    c = check.coupon
    left = None if c is None or c.max_uses is None else max(0, c.max_uses - c.used_count)
    return CouponValidation(
        code=check.code, valid=check.valid, reason=check.reason, coupon_id=c.id if c else None,
        discount_kind=c.discount_kind if c else None, discount_amount=check.discount,
        free_shipping=bool(c and c.discount_kind == RewardKind.FREE_SHIPPING), sku=c.sku if c else None,
        expires_at=c.expires_at if c else None, uses_left=left,
    )


def use_out(use: CouponUse, coupon: Coupon, *, replayed: bool) -> CouponUseOut:
    return CouponUseOut(
        id=use.id, coupon_id=coupon.id, code=coupon.code, order_id=use.order_ref, customer_id=use.customer_id,
        order_amount=use.order_amount, discount=use.discount, discount_kind=coupon.discount_kind,
        free_shipping=coupon.discount_kind == RewardKind.FREE_SHIPPING, sku=coupon.sku, currency=use.currency,
        status=use.status, consumed_at=use.consumed_at, released_at=use.released_at, replayed=replayed,
    )


def offers_out(session: Session, workspace_id: int, customer_id: int, available: int) -> list[RewardOffer]:
    return [
        RewardOffer(reward=RewardOut.model_validate(o.reward), affordable=o.affordable, available=o.reason is None,
                    reason=o.reason, points_short=o.points_short)
        for o in service.offers(session, workspace_id, customer_id, available_points=available)
    ]


def customer_offers(session: Session, workspace_id: int, customer_id: int) -> list[RewardOffer]:
    available = ledger.balance(session, workspace_id, customer_id).available
    return offers_out(session, workspace_id, customer_id, available)


def loyalty_summary(session: Session, workspace_id: int, customer_id: int, *, base_url: str) -> LoyaltySummary:
    """Balance, tier and progress, the rewards the customer can redeem now and the next ones in reach."""
    balance = ledger.balance(session, workspace_id, customer_id)
    offers = offers_out(session, workspace_id, customer_id, balance.available)
    from patronage.referrals.service import code_of, referral_link

    code = code_of(session, workspace_id, customer_id)
    return LoyaltySummary(
        customer_id=customer_id,
        balance=balance,
        tier=customer_tier_out(session, workspace_id, customer_id),
        rewards_available=[o for o in offers if o.available],
        rewards_upcoming=[o for o in offers if o.reason == "insufficient_points"][:UPCOMING],
        referral_code=code.code if code else None,
        referral_link=referral_link(base_url, code.code) if code else None,
    )
