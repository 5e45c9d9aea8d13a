"""Who is using the console, in which language, and what they may see.

Every console page starts with ``console(request, session, permission)``: the signed-in staff member
(from the session cookie; anyone else is sent to /login, members included), their workspace and role,
the page language, and the navigation filtered by their permissions. State-changing requests pass the
form's ``csrf_token`` (or the X-CSRF-Token header that HTMX sends) and fail with 403 without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from patronage.kit.errors import Forbidden, NotFound, Unauthenticated
from patronage.kit.http.route import request_session
from patronage.web.i18n import N_, supported, translator
from patronage.web.rendering import render
from patronage.web.route import LANG_COOKIE, SignInRequired
from patronage.workspaces import repository as workspaces
from patronage.workspaces.auth import Principal, session_principal
from patronage.workspaces.models import User, Workspace
from patronage.workspaces.permissions import Permission

DbSession = Annotated[Session, Depends(request_session)]
P = Permission


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    permission: str


NAV: list[tuple[str, list[NavItem]]] = [
    (N_("Overview"), [
        NavItem(N_("Dashboard"), "/", P.WORKSPACE_READ),
        NavItem(N_("Customers"), "/console/customers", P.CUSTOMERS_READ),
        NavItem(N_("Segments"), "/console/segments", P.SEGMENTS_READ),
    ]),
    (N_("Loyalty program"), [
        NavItem(N_("Earning rules"), "/console/program/rules", P.LOYALTY_READ),
        NavItem(N_("Tiers"), "/console/program/tiers", P.LOYALTY_READ),
        NavItem(N_("Rewards"), "/console/program/rewards", P.LOYALTY_READ),
        NavItem(N_("Referrals"), "/console/program/referrals", P.LOYALTY_READ),
        NavItem(N_("Points and expiry"), "/console/program/points", P.LOYALTY_READ),
    ]),
    (N_("Settings"), [
        NavItem(N_("Branding"), "/console/settings/branding", P.WORKSPACE_READ),
        NavItem(N_("Staff and roles"), "/console/settings/staff", P.WORKSPACE_READ),
        NavItem(N_("API keys"), "/console/settings/api-keys", P.API_KEYS_MANAGE),
        NavItem(N_("Webhooks"), "/console/settings/webhooks", P.WEBHOOKS_MANAGE),
        NavItem(N_("Background jobs"), "/console/jobs", P.JOBS_MANAGE),
    ]),
]

# Messages shown after a form redirects back (?done=<key>): the URL never carries free text.
DONE: dict[str, str] = {
    "saved": N_("Saved."),
    "created": N_("Created."),
    "deleted": N_("Deleted."),
    "revoked": N_("Revoked."),
    "published": N_("Published: the new rules apply to the next orders."),
    "queued": N_("Queued: it runs in the background."),
}


@dataclass
class Console:
    request: Request
    session: Session
    principal: Principal
    workspace: Workspace
    user: User
    language: str

    @property
    def _(self) -> Any:
        return translator(self.language).gettext

    def can(self, permission: str) -> bool:
        return permission in self.principal.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(self._("Your role does not allow this (it needs %(permission)s).")
                            % {"permission": permission})

    def nav(self) -> list[tuple[str, list[NavItem]]]:
        sections = []
        for title, items in NAV:
            visible = [i for i in items if self.can(i.permission)]
            if visible:
                sections.append((title, visible))
        return sections

    def render(
        self, template: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        done = self.request.query_params.get("done")
        ctx = {
            "console": self, "workspace": self.workspace, "user": self.user, "nav": self.nav(),
            "csrf_token": self.principal.csrf_token, "path": self.request.url.path,
            "done": DONE.get(done) if done else None, "P": P, **(context or {}),
        }
        return render(self.request, template, ctx, language=self.language, timezone=self.workspace.timezone,
                      status_code=status_code, headers=headers)


def console_language(request: Request, workspace: Workspace) -> str:
    """An explicit choice (?lang=, the language menu's cookie), else the browser's, else the workspace's."""
    explicit = supported(request.query_params.get("lang")) or supported(request.cookies.get(LANG_COOKIE))
    if explicit:
        return explicit
    for part in request.headers.get("accept-language", "").split(","):
        found = supported(part.split(";")[0])
        if found:
            return found
    return supported(workspace.locale) or "en"


def console(
    request: Request, session: Session, permission: str | None = None, *, csrf_token: str | None = None
) -> Console:
    """The console's caller; raises SignInRequired (redirect), 403 on a missing permission or CSRF token."""
    try:
        principal = session_principal(request, session, csrf_token=csrf_token)
    except Unauthenticated:
        principal = None
    if principal is None or principal.kind != "user":
        next_path = request.url.path if request.method == "GET" else None
        raise SignInRequired("/login", next_path)
    workspace = workspaces.get_workspace(session, principal.workspace_id)
    user = session.get(User, principal.subject_id)
    if workspace is None or user is None:
        raise NotFound("workspace not found")
    ctx = Console(request, session, principal, workspace, user, console_language(request, workspace))
    if permission is not None:
        ctx.require(permission)
    return ctx
