"""The member's home (points, tier, rewards in reach, referral link) and their points history."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from patronage.ledger.repository import LedgerRepository
from patronage.referrals import service as referrals
from patronage.rewards import views as rewards
from patronage.web.console.deps import DbSession
from patronage.web.i18n import N_
from patronage.web.portal.deps import Portal, portal
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
HISTORY_PAGE = 20
KINDS = {"earn": N_("Earned"), "spend": N_("Redeemed"), "expire": N_("Expired"), "reverse": N_("Reversed"),
         "adjust": N_("Adjusted"), "release": N_("Released"), "transfer": N_("Transferred")}


def share_links(ctx: Portal, link: str) -> dict[str, str]:
    _ = ctx._
    text = _("Join me at %(shop)s and get a welcome gift:") % {"shop": ctx.workspace.name}
    subject = _("An invitation to %(shop)s") % {"shop": ctx.workspace.name}
    return {
        "text": text,
        "email": f"mailto:?subject={quote(subject)}&body={quote(text + ' ' + link)}",
        "whatsapp": f"https://wa.me/?text={quote(text + ' ' + link)}",
    }


def _transactions(ctx: Portal, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    repo = LedgerRepository(ctx.session, ctx.workspace.id)
    account = repo.account(ctx.customer_id)
    if account is None:
        return [], None
    return repo.history(account.id, kind=None, cursor=cursor, limit=limit)


@router.get("/portal/{slug}/")
def home(request: Request, *, session: DbSession, slug: str) -> Response:
    ctx = portal(request, session, slug)
    ws = ctx.workspace.id
    summary = rewards.loyalty_summary(session, ws, ctx.customer_id, base_url=request.app.state.settings.base_url)
    progress = summary.tier.progress
    share = None
    if progress.next_tier is not None and progress.to_next is not None and progress.value + progress.to_next > 0:
        share = float(progress.value / (progress.value + progress.to_next))
    redemptions, _ = rewards.list_redemptions(session, ws, customer_id=ctx.customer_id, reward_id=None,
                                              cursor=None, limit=3)
    transactions, _ = _transactions(ctx, None, 5)
    return ctx.render("portal/home.html", {
        "summary": summary, "tier_share": share, "redemptions": [r for r in redemptions if r.coupon],
        "transactions": transactions, "kinds": KINDS,
        "share": share_links(ctx, summary.referral_link) if summary.referral_link else None,
    })


@router.get("/portal/{slug}/history")
def history(request: Request, *, session: DbSession, slug: str, cursor: str | None = None) -> Response:
    ctx = portal(request, session, slug)
    transactions, next_cursor = _transactions(ctx, cursor, HISTORY_PAGE)
    redemptions, _ = rewards.list_redemptions(session, ctx.workspace.id, customer_id=ctx.customer_id,
                                              reward_id=None, cursor=None, limit=20)
    return ctx.render("portal/history.html", {
        "transactions": transactions, "kinds": KINDS, "redemptions": redemptions,
        "next_url": f"{ctx.base}/history?cursor={quote(next_cursor)}" if next_cursor else None,
    })


@router.post("/portal/{slug}/referral")
def referral_code(request: Request, *, session: DbSession, slug: str, csrf_token: Annotated[str, Form()]) -> Response:
    """Create the member's referral code (once; the same code afterwards)."""
    ctx = portal(request, session, slug, csrf_token=csrf_token)
    referrals.ensure_code(session, ctx.workspace.id, ctx.customer_id,
                          ip=request.client.host if request.client else None)
    return redirect(request, f"{ctx.base}/#refer")
