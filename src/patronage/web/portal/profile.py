"""The member's profile and communication preferences.

Each preference change is recorded through the customers consent service as evidence: the wording the
member saw (in their language), its version, the time, IP address and browser.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from patronage.customers import consent
from patronage.customers import service as customers
from patronage.customers.consent_repository import ConsentTopicRepository
from patronage.customers.consent_schemas import ConsentDecisionIn
from patronage.customers.schemas import CustomerUpdate
from patronage.web.console.deps import DbSession
from patronage.web.i18n import N_, SUPPORTED, supported
from patronage.web.portal.deps import Portal, portal
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SOURCE = "member_portal"
WORDING_VERSION = "portal-2026-1"
CHANNELS = {
    "email": N_("Send me news, offers and reminders about my points by email."),
    "sms": N_("Send me offers and reminders by text message (SMS)."),
}
TOPIC_WORDING = N_("Email me about: %(topic)s")


def _choices(ctx: Portal) -> list[dict[str, Any]]:
    """Every preference the member can set, with its current state and the wording shown."""
    _ = ctx._
    states = {(s.channel, s.topic or ""): s.status for s in
              consent.current_states(ctx.session, ctx.workspace.id, ctx.customer_id)}
    items = [{"key": channel, "channel": channel, "topic": None, "label": _(wording),
              "granted": states.get((channel, "")) == "granted", "pending": states.get((channel, "")) == "pending"}
             for channel, wording in CHANNELS.items()]
    for topic in ConsentTopicRepository(ctx.session, ctx.workspace.id).list():
        state = states.get(("email", topic.key))
        items.append({"key": f"topic:{topic.key}", "channel": "email", "topic": topic.key,
                      "label": _(TOPIC_WORDING) % {"topic": topic.name}, "description": topic.description,
                      "granted": state == "granted", "pending": state == "pending"})
    return items


def _ip(request: Request) -> str | None:
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def _page(ctx: Portal, *, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return ctx.render("portal/profile.html", {
        "choices": _choices(ctx), "errors": errors or {}, "saved": ctx.request.query_params.get("saved"),
        "languages_supported": SUPPORTED,
    }, status_code=status_code)


@router.get("/portal/{slug}/profile")
def profile(request: Request, *, session: DbSession, slug: str) -> Response:
    return _page(portal(request, session, slug))


@router.post("/portal/{slug}/profile")
def save_profile(
    request: Request, *, session: DbSession, slug: str, csrf_token: Annotated[str, Form()],
    first_name: Annotated[str, Form(max_length=200)] = "", last_name: Annotated[str, Form(max_length=200)] = "",
    language: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    ctx = portal(request, session, slug, csrf_token=csrf_token)
    try:
        update = CustomerUpdate.model_validate({
            "first_name": first_name.strip() or None, "last_name": last_name.strip() or None,
            "locale": supported(language),
        })
    except ValidationError:
        session.rollback()
        return _page(ctx, errors={"first_name": ctx._("Check your name.")}, status_code=422)
    customers.update_customer(session, ctx.workspace.id, ctx.customer_id, update, actor=ctx.member.actor
                              if ctx.member else "member")
    return redirect(request, f"{ctx.base}/profile?saved=profile")


@router.post("/portal/{slug}/preferences")
def save_preferences(
    request: Request, *, session: DbSession, slug: str, csrf_token: Annotated[str, Form()],
    consents: Annotated[list[str] | None, Form(alias="consent")] = None,
) -> Response:
    """The checked boxes are the consents wanted; each change becomes one evidence row."""
    ctx = portal(request, session, slug, csrf_token=csrf_token)
    wanted = set(consents or [])
    ip = _ip(request)
    agent = (request.headers.get("user-agent") or "")[:500] or None
    for choice in _choices(ctx):
        granted = choice["key"] in wanted
        if granted == choice["granted"]:
            continue
        decision = ConsentDecisionIn(
            channel=choice["channel"], topic=choice["topic"], status="granted" if granted else "withdrawn",
            source=SOURCE, text=choice["label"], text_version=WORDING_VERSION, ip=ip, user_agent=agent,
        )
        consent.record_decision(session, ctx.workspace.id, ctx.customer_id, decision,
                                actor=ctx.member.actor if ctx.member else "member")
    return redirect(request, f"{ctx.base}/profile?saved=preferences")
