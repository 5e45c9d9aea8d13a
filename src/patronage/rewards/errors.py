"""Reward and coupon errors; each renders as problem+json with a stable code (and a ``reason``)."""

from __future__ import annotations

from patronage.kit.errors import Conflict, NotFound


class RewardUnavailable(Conflict):
    """``reason``: inactive | not_yet_available | no_longer_available | tier_required | segment_required |
    out_of_stock | limit_reached."""

    code = "reward_unavailable"
    title = "This reward cannot be redeemed"


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    title = "No such coupon code"


class CouponNotUsable(Conflict):
    """``reason``: see ``rules.coupon_problem``."""

    code = "coupon_not_usable"
    title = "This coupon cannot be used on this order"


class RedemptionNotCancellable(Conflict):
    code = "redemption_not_cancellable"
    title = "This redemption can no longer be cancelled"
