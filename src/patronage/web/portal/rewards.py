"""Redeeming a reward: a confirmation step, the redemption, then the coupon with its QR code.

The confirmation page carries a fresh request id, so pressing "Redeem" twice (or reloading the POST)
returns the first redemption instead of spending the points again.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from patronage.kit import ratelimit
from patronage.kit.errors import Conflict, NotFound, RateLimited
from patronage.ledger import service as ledger
from patronage.rewards import service as rewards
from patronage.rewards import views
from patronage.rewards.repository import RedemptionRepository
from patronage.web.console.deps import DbSession
from patronage.web.i18n import N_
from patronage.web.portal.deps import Portal, portal
from patronage.web.qr import qr_svg
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
REASONS = {
    "insufficient_points": N_("You do not have enough points for this reward yet."),
    "out_of_stock": N_("This reward is out of stock."),
    "limit_reached": N_("You have already redeemed this reward as often as allowed."),
    "tier_required": N_("This reward is for members of a higher tier."),
    "segment_required": N_("This reward is not offered to you."),
    "inactive": N_("This reward is not offered at the moment."),
    "not_yet_available": N_("This reward is not available yet."),
    "no_longer_available": N_("This reward is no longer available."),
}


def _offer(ctx: Portal, reward_id: int) -> tuple[object, int]:
    available = ledger.balance(ctx.session, ctx.workspace.id, ctx.customer_id).available
    for offer in views.offers_out(ctx.session, ctx.workspace.id, ctx.customer_id, available):
        if offer.reward.id == reward_id:
            return offer, available
    raise NotFound(f"reward {reward_id} not found")


def _confirm_page(ctx: Portal, reward_id: int, *, error: str | None = None, status_code: int = 200) -> Response:
    offer, available = _offer(ctx, reward_id)
    return ctx.render("portal/redeem.html", {
        "offer": offer, "available": available, "request_id": uuid.uuid4().hex, "error": error,
        "reasons": REASONS,
    }, status_code=status_code)


@router.get("/portal/{slug}/rewards/{reward_id}")
def confirm(request: Request, *, session: DbSession, slug: str, reward_id: int) -> Response:
    return _confirm_page(portal(request, session, slug), reward_id)


@router.post("/portal/{slug}/rewards/{reward_id}/redeem")
def redeem(
    request: Request, *, session: DbSession, slug: str, reward_id: int, csrf_token: Annotated[str, Form()],
    request_id: Annotated[str, Form(min_length=8, max_length=64)],
) -> Response:
    ctx = portal(request, session, slug, csrf_token=csrf_token)
    _ = ctx._
    try:
        ratelimit.hit(request.app.state.db, ratelimit.REDEMPTION, f"member:{ctx.workspace.id}:{ctx.customer_id}")
        redemption = rewards.redeem(session, ctx.workspace.id, ctx.customer_id, reward_id,
                                    request_id=f"portal:{request_id}", actor=ctx.member.actor if ctx.member else "")
    except (Conflict, RateLimited) as exc:
        session.rollback()
        reason = exc.extra.get("reason") or ("insufficient_points" if exc.code == "insufficient_points" else None)
        message = _(REASONS[reason]) if reason in REASONS else exc.detail
        return _confirm_page(ctx, reward_id, error=message, status_code=exc.status)
    return redirect(request, f"{ctx.base}/redemptions/{redemption.id}?new=1")


@router.get("/portal/{slug}/redemptions/{redemption_id}")
def redemption_page(request: Request, *, session: DbSession, slug: str, redemption_id: int) -> Response:
    ctx = portal(request, session, slug)
    found = RedemptionRepository(session, ctx.workspace.id).get(redemption_id)
    if found is None or found.customer_id != ctx.customer_id:  # someone else's: as if it did not exist
        raise NotFound(f"redemption {redemption_id} not found")
    out = views.redemption_out(session, ctx.workspace.id, found)
    reward = rewards.get_reward(session, ctx.workspace.id, found.reward_id)
    qr = qr_svg(out.coupon.code, title=ctx._("QR code of coupon %(code)s") % {"code": out.coupon.display_code}) \
        if out.coupon else None
    return ctx.render("portal/redemption.html", {"redemption": out, "reward": reward, "qr": qr})
