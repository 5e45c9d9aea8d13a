"""Staff sign-in and sign-out, and the console's language menu."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from patronage.config import Settings
from patronage.kit.errors import RateLimited, Unauthenticated
from patronage.web import csrf
from patronage.web.console.deps import DbSession, console
from patronage.web.i18n import supported, translator
from patronage.web.rendering import render
from patronage.web.route import LANG_COOKIE, WebRoute, visitor_language
from patronage.workspaces import repository as repo
from patronage.workspaces import service
from patronage.workspaces.auth import SESSION_COOKIE, limit_login, session_principal

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _login_page(request: Request, token: str, *, error: str | None = None, email: str = "",
                next_path: str = "/", status_code: int = 200) -> Response:
    response = render(request, "console/login.html",
                      {"csrf_token": token, "error": error, "email": email, "next": next_path},
                      language=visitor_language(request), status_code=status_code)
    csrf.remember(request, response, csrf.LOGIN_CSRF_COOKIE, token)
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_page(request, csrf.token_for(request, csrf.LOGIN_CSRF_COOKIE), next_path=safe_next(next))


@router.post("/login")
def login_submit(
    request: Request,
    *,
    session: DbSession,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    settings: Settings = request.app.state.settings
    token = csrf.check(request, csrf.LOGIN_CSRF_COOKIE, csrf_token)
    _ = translator(visitor_language(request)).gettext
    try:
        limit_login(request, email)
        user = service.check_password(session, email, password)
    except RateLimited:
        return _login_page(request, token, error=_("Too many attempts. Wait a few minutes and try again."),
                           email=email, next_path=safe_next(next), status_code=429)
    except Unauthenticated:
        return _login_page(request, token, error=_("Email or password is wrong."), email=email,
                           next_path=safe_next(next), status_code=401)
    secret = service.start_session(
        session, user, workspace_slug=None, ttl=timedelta(hours=settings.session_ttl_hours),
        ip=request.client.host if request.client else None, user_agent=request.headers.get("user-agent"),
    )[2]
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, secret, max_age=settings.session_ttl_hours * 3600, httponly=True,
                        secure=settings.cookie_secure, samesite="lax", path="/")
    response.delete_cookie(csrf.LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout_submit(request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()]) -> Response:
    # The form carries the session's CSRF token (a cross-site form cannot know it); a session that has
    # already ended needs none: the cookie is cleared either way.
    try:
        principal = session_principal(request, session, csrf_token=csrf_token)
    except Unauthenticated:
        principal = None
    if principal is not None and principal.session_id is not None:
        staff_session = repo.StaffSessionRepository(session, principal.workspace_id).get(principal.session_id)
        if staff_session is not None:
            service.end_session(session, staff_session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/console/language")
def choose_language(
    request: Request, *, session: DbSession, lang: Annotated[str, Form()], csrf_token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    console(request, session, csrf_token=csrf_token)
    settings: Settings = request.app.state.settings
    response = RedirectResponse(safe_next(next), status_code=303)
    chosen = supported(lang)
    if chosen:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, httponly=True,
                            secure=settings.cookie_secure, samesite="lax", path="/")
    return response
