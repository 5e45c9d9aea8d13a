"""Who is using the member portal of a workspace, in which language and brand.

A member is signed in by the member cookie (set after a magic link); their session belongs to one
workspace, so the cookie means nothing in another workspace's portal. Member forms carry the member
session's CSRF token; staff sessions are not members and never reach member pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from patronage.customers import service as customers
from patronage.customers.models import Customer
from patronage.kit.errors import CsrfFailed, NotFound
from patronage.kit.http.route import SAFE_METHODS
from patronage.kit.security import constant_time_equals
from patronage.members.service import find_member_session
from patronage.web.branding import Brand
from patronage.web.i18n import negotiate, translator
from patronage.web.rendering import render
from patronage.web.route import SignInRequired
from patronage.workspaces import repository as workspaces
from patronage.workspaces.auth import MEMBER_COOKIE, Principal
from patronage.workspaces.models import Workspace
from patronage.workspaces.permissions import MEMBER_PERMISSIONS


@dataclass
class Portal:
    request: Request
    session: Session
    workspace: Workspace
    member: Principal | None
    customer: Customer | None
    language: str

    @property
    def _(self) -> Any:
        return translator(self.language).gettext

    @property
    def brand(self) -> Brand:
        ws = self.workspace
        return Brand.of(ws.name, ws.brand_primary_color, ws.brand_accent_color, ws.brand_logo_url)

    @property
    def base(self) -> str:
        return f"/portal/{self.workspace.slug}"

    @property
    def customer_id(self) -> int:
        assert self.member is not None
        return self.member.subject_id

    def render(
        self, template: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        ctx = {
            "portal": self, "workspace": self.workspace, "brand": self.brand, "base": self.base,
            "customer": self.customer, "csrf_token": self.member.csrf_token if self.member else None,
            "path": self.request.url.path, **(context or {}),
        }
        return render(self.request, template, ctx, language=self.language, timezone=self.workspace.timezone,
                      status_code=status_code, headers=headers)


def workspace_by_slug(session: Session, slug: str) -> Workspace:
    workspace = workspaces.get_workspace_by_slug(session, slug)
    if workspace is None:
        raise NotFound("this portal does not exist")
    return workspace


def _member(
    request: Request, session: Session, workspace: Workspace, csrf_token: str | None, *, enforce_csrf: bool
) -> Principal | None:
    token = request.cookies.get(MEMBER_COOKIE)
    if not token:
        return None
    found = find_member_session(session, token)
    if found is None or found.workspace_id != workspace.id:
        return None
    if enforce_csrf and request.method not in SAFE_METHODS:
        sent = csrf_token or request.headers.get("x-csrf-token", "")
        if not sent or not constant_time_equals(sent, found.csrf_token):
            raise CsrfFailed("this form has expired; reload the page and try again")
    return Principal("member", found.workspace_id, found.customer_id, MEMBER_PERMISSIONS, session_id=found.id,
                     csrf_token=found.csrf_token)


def portal(
    request: Request, session: Session, slug: str, *, member: bool = True, csrf_token: str | None = None
) -> Portal:
    """The portal's visitor. ``member=True``: a signed-in member is required (else: the sign-in page)."""
    workspace = workspace_by_slug(session, slug)
    # Forms of signed-out pages (sign-in) have their own CSRF check and may come from a signed-in browser.
    principal = _member(request, session, workspace, csrf_token, enforce_csrf=member or csrf_token is not None)
    if principal is None and member:
        raise SignInRequired(f"/portal/{workspace.slug}/sign-in")
    customer = customers.get_customer(session, workspace.id, principal.subject_id) if principal else None
    language = negotiate(request.query_params.get("lang"), customer.locale if customer else None, workspace.locale,
                         accept_language=request.headers.get("accept-language"))
    return Portal(request, session, workspace, principal, customer, language)
