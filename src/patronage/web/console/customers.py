"""Customers: the searchable, filterable list and the customer 360 page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from patronage.customers import consent, lifecycle, timeline
from patronage.customers import service as customers
from patronage.customers.lifecycle_rules import Stage
from patronage.events.models import Order
from patronage.events.repository import OrderRepository
from patronage.kit.errors import Conflict, ValidationFailed
from patronage.kit.pagination import paginate_by_id
from patronage.ledger import service as ledger
from patronage.ledger.repository import LedgerRepository
from patronage.referrals import views as referrals
from patronage.rewards import views as rewards
from patronage.segments.repository import MembershipRepository as SegmentMembers
from patronage.tiers import service as tiers
from patronage.tiers.views import customer_tier_out
from patronage.web.console import customer_reads as reads
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.i18n import N_
from patronage.web.rendering import is_htmx
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SORT_LABELS = {"newest": N_("Newest"), "last_order": N_("Last order"), "spent": N_("Total spent"),
               "orders": N_("Orders"), "name": N_("Name")}
STAGE_LABELS = {"prospect": N_("Prospect"), "new": N_("New"), "active": N_("Active"), "loyal": N_("Loyal"),
                "advocate": N_("Advocate"), "at_risk": N_("At risk"), "lapsed": N_("Lapsed")}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@router.get("/console/customers")
def customer_list(
    request: Request, *, session: DbSession, q: Annotated[str | None, Query(max_length=200)] = None,
    stage: str | None = None, tier: str | None = None, segment: str | None = None, sort: str = "newest",
    cursor: str | None = None,
) -> Response:
    ctx = console(request, session, P.CUSTOMERS_READ)
    ws = ctx.workspace.id
    filters = reads.ListFilters(
        q=(q or "").strip() or None, stage=stage if stage in {s.value for s in Stage} else None,
        segment_id=_int(segment), tier_id=_int(tier), sort=sort if sort in reads.SORTS else "newest",
    )
    rows, next_cursor = reads.customer_page(session, ws, filters, cursor=cursor, limit=25)
    extras = reads.row_extras(session, ws, [c.id for c in rows])
    query = {k: v for k, v in {"q": filters.q, "stage": filters.stage, "tier": filters.tier_id,
                               "segment": filters.segment_id, "sort": filters.sort}.items() if v}
    next_url = f"/console/customers?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None
    context: dict[str, Any] = {
        "rows": rows, "extras": extras, "filters": filters, "next_url": next_url, "paged": bool(cursor),
        "stages": [(s, ctx._(label)) for s, label in STAGE_LABELS.items()],
        "sorts": [(s, ctx._(label)) for s, label in SORT_LABELS.items()],
        "tiers": tiers.list_tiers(session, ws), "segments": reads.segments(session, ws),
        "stage_labels": STAGE_LABELS,
    }
    if is_htmx(request) and request.headers.get("hx-target") == "results":
        return ctx.render("console/_customer_rows.html", context)
    return ctx.render("console/customers.html", context)


def _timeline(ctx: Console, customer_id: int, cursor: str | None) -> dict[str, Any]:
    items, next_cursor = timeline.customer_timeline(ctx.session, ctx.workspace.id, customer_id, cursor=cursor,
                                                    limit=15)
    return {"items": items, "next_cursor": next_cursor, "customer_id": customer_id}


@router.get("/console/customers/{customer_id}")
def customer_360(request: Request, *, session: DbSession, customer_id: int) -> Response:
    ctx = console(request, session, P.CUSTOMERS_READ)
    ws = ctx.workspace.id
    customer = customers.get_customer(session, ws, customer_id)  # another workspace's id: 404
    states = consent.current_states(session, ws, customer_id)
    evidence, _ = consent.list_evidence(session, ws, customer_id, cursor=None, limit=10)
    orders, _ = paginate_by_id(session, OrderRepository(session, ws).listing(
        customer_id=customer_id, status=None, placed_from=None, placed_to=None), Order.id, cursor=None, limit=10)
    context: dict[str, Any] = {
        "customer": customer, "identities": customers.list_identities(session, ws, customer_id),
        "consents": states, "can_message": consent.channel_permissions(states), "evidence": evidence,
        "orders": orders, "stages": lifecycle.history(session, ws, customer_id)[-8:],
        "scores": reads.scores_of(session, ws, customer_id),
        "segments": reads.segment_names(session, ws, list(SegmentMembers(session, ws).segments_of(customer_id))),
        "timeline": _timeline(ctx, customer_id, None), "stage_labels": STAGE_LABELS,
        "adjust_id": uuid.uuid4().hex,
    }
    if ctx.can(P.LOYALTY_READ):
        repo = LedgerRepository(session, ws)
        account = repo.account(customer_id)
        context.update(
            balance=ledger.balance(session, ws, customer_id),
            lots=repo.lots(account.id, open_only=True, cursor=None, limit=10)[0] if account else [],
            transactions=repo.history(account.id, kind=None, cursor=None, limit=10)[0] if account else [],
            tier=customer_tier_out(session, ws, customer_id),
            referral=referrals.customer_referral(session, ws, customer_id, request.app.state.settings.base_url),
            redemptions=rewards.list_redemptions(session, ws, customer_id=customer_id, reward_id=None, cursor=None,
                                                 limit=10)[0],
        )
    return ctx.render("console/customer.html", context)


@router.get("/console/customers/{customer_id}/timeline")
def customer_timeline(request: Request, *, session: DbSession, customer_id: int, cursor: str | None = None) -> Response:
    ctx = console(request, session, P.CUSTOMERS_READ)
    template = "console/_timeline.html" if is_htmx(request) else "console/timeline.html"
    return ctx.render(template, {"timeline": _timeline(ctx, customer_id, cursor)})


@router.post("/console/customers/{customer_id}/points")
def adjust_points(
    request: Request, *, session: DbSession, customer_id: int, csrf_token: Annotated[str, Form()],
    points: Annotated[str, Form()], reason: Annotated[str, Form(max_length=500)],
    adjust_id: Annotated[str, Form(max_length=64)],
) -> Response:
    ctx = console(request, session, P.LOYALTY_WRITE, csrf_token=csrf_token)
    _ = ctx._
    try:
        amount = int(points)
        ledger.adjust(session, ctx.workspace.id, customer_id, amount, reason=reason, actor=ctx.principal.actor,
                      source_id=f"console:{adjust_id}")
    except (ValueError, ValidationFailed, Conflict) as exc:
        session.rollback()
        message = exc.detail if isinstance(exc, ValidationFailed | Conflict) else _("Points must be a whole number.")
        return ctx.render("console/message.html", {"title": _("Points not adjusted"), "message": message,
                                                   "error": True, "back": f"/console/customers/{customer_id}"},
                          status_code=422)
    return redirect(request, f"/console/customers/{customer_id}?done=saved")
