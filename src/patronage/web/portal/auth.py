"""Member sign-in by magic link: ask for a link, open it, press "Sign in", sign out.

Opening the emailed link (a GET) only shows a button; the button's POST spends the link. Mail scanners
that fetch links therefore cannot sign anyone in or burn the link. Requests for links are rate limited
per address and per client, and the answer never reveals whether an address belongs to a member.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from patronage.config import Settings
from patronage.kit import ratelimit
from patronage.kit.errors import RateLimited, Unauthenticated
from patronage.members import service as members
from patronage.members.models import MemberSession
from patronage.members.schemas import MagicLinkRequest
from patronage.web import csrf
from patronage.web.console.deps import DbSession
from patronage.web.emails import magic_link_mail
from patronage.web.portal.deps import Portal, portal
from patronage.web.route import WebRoute
from patronage.workspaces.auth import MEMBER_COOKIE

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _with_token(ctx: Portal, template: str, context: dict[str, object], *, status_code: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    token = csrf.token_for(ctx.request, csrf.PORTAL_CSRF_COOKIE)
    response = ctx.render(template, {**context, "form_token": token}, status_code=status_code, headers=headers)
    csrf.remember(ctx.request, response, csrf.PORTAL_CSRF_COOKIE, token, path="/portal/")
    return response


@router.get("/portal/{slug}")
def portal_root(slug: str) -> Response:
    return RedirectResponse(f"/portal/{slug}/", status_code=307)


@router.get("/portal/{slug}/sign-in")
def sign_in_page(request: Request, *, session: DbSession, slug: str) -> Response:
    ctx = portal(request, session, slug, member=False)
    if ctx.member is not None:
        return RedirectResponse(f"{ctx.base}/", status_code=303)
    return _with_token(ctx, "portal/sign_in.html", {"email": "", "error": None})


@router.post("/portal/{slug}/sign-in")
def request_link(
    request: Request, *, session: DbSession, slug: str, email: Annotated[str, Form(max_length=320)],
    form_token: Annotated[str, Form()],
) -> Response:
    ctx = portal(request, session, slug, member=False)
    csrf.check(request, csrf.PORTAL_CSRF_COOKIE, form_token)
    _ = ctx._
    try:
        address = MagicLinkRequest(email=email).email
    except ValidationError:
        return _with_token(ctx, "portal/sign_in.html", {"email": email, "error": _("Enter a valid email address.")},
                           status_code=422)
    settings: Settings = request.app.state.settings
    ip = request.client.host if request.client else None
    try:
        ratelimit.hit(request.app.state.db, ratelimit.MAGIC_LINK, f"{slug}:{address.lower()}")
        ratelimit.hit(request.app.state.db, ratelimit.MAGIC_LINK_BY_IP, f"ip:{ip}")
    except RateLimited as exc:
        return _with_token(ctx, "portal/sign_in.html",
                           {"email": email, "error": _("Too many sign-in links were requested. Wait a few minutes.")},
                           status_code=429, headers={"Retry-After": str(exc.extra.get("retry_after", 60))})
    members.request_magic_link(session, settings, ctx.workspace, address, ip=ip, compose=magic_link_mail)
    return ctx.render("portal/check_email.html", {"email": address})


@router.get("/portal/{slug}/auth/{token}")
def open_link(request: Request, *, session: DbSession, slug: str, token: str) -> Response:
    """Show the "Sign in" button; nothing is spent by opening the link."""
    ctx = portal(request, session, slug, member=False)
    return _with_token(ctx, "portal/auth.html", {"token": token}, headers={"Referrer-Policy": "no-referrer"})


@router.post("/portal/{slug}/auth")
def use_link(
    request: Request, *, session: DbSession, slug: str, token: Annotated[str, Form(max_length=200)],
    form_token: Annotated[str, Form()],
) -> Response:
    ctx = portal(request, session, slug, member=False)
    csrf.check(request, csrf.PORTAL_CSRF_COOKIE, form_token)
    settings: Settings = request.app.state.settings
    try:
        secret = members.consume_magic_link(session, settings, ctx.workspace.id, token)[1]
    except Unauthenticated:
        return _with_token(ctx, "portal/sign_in.html", {
            "email": "", "error": ctx._("This sign-in link is invalid, expired or already used. Ask for a new one."),
        }, status_code=401)
    response = RedirectResponse(f"{ctx.base}/", status_code=303)
    response.set_cookie(MEMBER_COOKIE, secret, max_age=settings.member_session_ttl_days * 86400, httponly=True,
                        secure=settings.cookie_secure, samesite="lax", path="/")
    return response


@router.post("/portal/{slug}/sign-out")
def sign_out(request: Request, *, session: DbSession, slug: str, csrf_token: Annotated[str, Form()]) -> Response:
    ctx = portal(request, session, slug, member=False, csrf_token=csrf_token)
    if ctx.member is not None and ctx.member.session_id is not None:
        member_session = session.get(MemberSession, ctx.member.session_id)
        if member_session is not None and member_session.workspace_id == ctx.workspace.id:
            members.end_member_session(session, member_session)
    response = RedirectResponse(f"{ctx.base}/sign-in", status_code=303)
    response.delete_cookie(MEMBER_COOKIE, path="/")
    return response
