"""``patronage doctor`` checks for rewards and coupons (they read every workspace: an operator's tool)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from patronage.kit.doctor import Check, Finding
from patronage.rewards.models import Coupon, CouponUse, Redemption, Reward

SHOW = 5


def _finding(check: str, bad: Sequence[object], what: str, ok: str) -> list[Finding]:
    if bad:
        sample = ", ".join(str(b) for b in list(bad)[:SHOW])
        return [Finding(check, "error", f"{len(bad)} {what}: {sample}")]
    return [Finding(check, "ok", ok)]


def check_coupon_uses(session: Session) -> list[Finding]:
    """0 <= used_count <= max_uses, and used_count equals the coupon's consumed uses."""
    out_of_range = session.scalars(
        select(Coupon.id).where(or_(Coupon.used_count < 0,
                                    and_(Coupon.max_uses.is_not(None), Coupon.used_count > Coupon.max_uses)))
    ).all()
    consumed = (
        select(CouponUse.coupon_id.label("cid"), func.count().label("n"))
        .where(CouponUse.status == "consumed")
        .group_by(CouponUse.coupon_id)
        .subquery()
    )
    drift = session.scalars(
        select(Coupon.id)
        .outerjoin(consumed, consumed.c.cid == Coupon.id)
        .where(func.coalesce(consumed.c.n, 0) != Coupon.used_count)
    ).all()
    bad = [f"coupon {c} used_count outside 0..max_uses" for c in out_of_range]
    bad += [f"coupon {c} used_count != consumed uses" for c in drift]
    return _finding("rewards.coupon_uses", bad, "coupon counter problem(s)", "coupon counters match their uses")


def check_reward_stock(session: Session) -> list[Finding]:
    """Stock never below 0; redeemed_count equals the reward's redemptions that were not cancelled."""
    negative = session.scalars(select(Reward.id).where(Reward.stock < 0)).all()
    live = (
        select(Redemption.reward_id.label("rid"), func.count().label("n"))
        .where(Redemption.status != "cancelled")
        .group_by(Redemption.reward_id)
        .subquery()
    )
    drift = session.scalars(
        select(Reward.id).outerjoin(live, live.c.rid == Reward.id)
        .where(func.coalesce(live.c.n, 0) != Reward.redeemed_count)
    ).all()
    bad = [f"reward {r} stock < 0" for r in negative] + [f"reward {r} redeemed_count drift" for r in drift]
    return _finding("rewards.stock", bad, "reward stock problem(s)", "stock >= 0 and redemption counts match")


def check_single_use(session: Session) -> list[Finding]:
    """A single-use coupon was never consumed by two orders at once."""
    twice = session.scalars(
        select(CouponUse.coupon_id)
        .join(Coupon, Coupon.id == CouponUse.coupon_id)
        .where(Coupon.max_uses == 1, CouponUse.status == "consumed")
        .group_by(CouponUse.coupon_id)
        .having(func.count() > 1)
    ).all()
    return _finding("rewards.single_use", [f"coupon {c}" for c in twice], "single-use coupon(s) used twice",
                    "no single-use coupon is used twice")


CHECKS: Sequence[Check] = (check_coupon_uses, check_reward_stock, check_single_use)
