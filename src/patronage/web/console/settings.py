"""Workspace settings: branding (logo, colours, language of the portal and emails), staff and roles, jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from patronage.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from patronage.kit.jobs.models import Job
from patronage.kit.pagination import paginate_by_id
from patronage.web.branding import AA_NORMAL_TEXT, Brand, contrast
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.console.forms import field_errors, optional
from patronage.web.i18n import LANGUAGE_NAMES, N_
from patronage.web.route import WebRoute, redirect
from patronage.workspaces import repository as repo
from patronage.workspaces import service as workspaces
from patronage.workspaces.permissions import Role
from patronage.workspaces.schemas import StaffCreate, WorkspaceUpdate

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SETTINGS = "/console/settings"
ROLES = {Role.OWNER: N_("Owner"), Role.ADMIN: N_("Administrator"), Role.MARKETER: N_("Marketer"),
         Role.SUPPORT_AGENT: N_("Support agent"), Role.ANALYST: N_("Analyst")}


# ---- branding -----------------------------------------------------------------------------------------
def _branding_page(ctx: Console, *, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    ws = ctx.workspace
    brand = Brand.of(ws.name, ws.brand_primary_color, ws.brand_accent_color, ws.brand_logo_url)
    return ctx.render("console/branding.html", {
        "brand": brand, "errors": errors or {}, "languages_all": list(LANGUAGE_NAMES.items()),
        "primary_contrast": round(contrast(brand.primary, brand.on_primary), 1),
        "contrast_ok": contrast(brand.primary, brand.on_primary) >= AA_NORMAL_TEXT,
    }, status_code=status_code)


@router.get(f"{SETTINGS}/branding")
def branding(request: Request, *, session: DbSession) -> Response:
    return _branding_page(console(request, session, P.WORKSPACE_READ))


@router.post(f"{SETTINGS}/branding")
def save_branding(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()], name: Annotated[str, Form()],
    brand_primary_color: Annotated[str, Form()], brand_accent_color: Annotated[str, Form()],
    locale: Annotated[str, Form()], brand_logo_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    ctx = console(request, session, P.WORKSPACE_MANAGE, csrf_token=csrf_token)
    try:
        data = WorkspaceUpdate(name=name, brand_primary_color=brand_primary_color,
                               brand_accent_color=brand_accent_color, locale=locale,
                               brand_logo_url=optional(brand_logo_url))
    except ValidationError as exc:
        return _branding_page(ctx, errors=field_errors(exc), status_code=422)
    workspaces.update_workspace(session, ctx.workspace, data, actor=ctx.principal.actor)
    return redirect(request, f"{SETTINGS}/branding?done=saved")


# ---- staff and roles -------------------------------------------------------------------------------------
def _staff_page(ctx: Console, *, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return ctx.render("console/staff.html", {
        "members": repo.MembershipRepository(ctx.session, ctx.workspace.id).list(), "errors": errors or {},
        "roles": [(r.value, ctx._(label)) for r, label in ROLES.items()], "role_labels": ROLES,
    }, status_code=status_code)


@router.get(f"{SETTINGS}/staff")
def staff(request: Request, *, session: DbSession) -> Response:
    return _staff_page(console(request, session, P.WORKSPACE_READ))


@router.post(f"{SETTINGS}/staff")
def add_staff(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()], email: Annotated[str, Form()],
    role: Annotated[str, Form()], password: Annotated[str, Form()], name: Annotated[str, Form()] = "",
) -> Response:
    ctx = console(request, session, P.STAFF_MANAGE, csrf_token=csrf_token)
    try:
        body = StaffCreate.model_validate({"email": email, "name": name, "password": password, "role": role})
        workspaces.add_staff(session, ctx.workspace.id, email=body.email, name=body.name, password=body.password,
                             role=body.role, actor=ctx.principal.actor, actor_permissions=ctx.principal.permissions)
    except (ValidationError, ValidationFailed, Conflict, Forbidden) as exc:
        session.rollback()
        errors = field_errors(exc) if isinstance(exc, ValidationError | ValidationFailed) else {"email": exc.detail}
        return _staff_page(ctx, errors=errors, status_code=422 if not isinstance(exc, Forbidden) else 403)
    return redirect(request, f"{SETTINGS}/staff?done=created")


@router.post(f"{SETTINGS}/staff/{{user_id}}/role")
def change_role(request: Request, *, session: DbSession, user_id: int, csrf_token: Annotated[str, Form()],
                role: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.STAFF_MANAGE, csrf_token=csrf_token)
    try:
        wanted = Role(role)
    except ValueError as exc:
        raise NotFound(f"no role {role!r}") from exc
    workspaces.change_role(session, ctx.workspace.id, user_id, wanted, actor=ctx.principal.actor,
                           actor_permissions=ctx.principal.permissions)
    return redirect(request, f"{SETTINGS}/staff?done=saved")


@router.post(f"{SETTINGS}/staff/{{user_id}}/remove")
def remove_staff(request: Request, *, session: DbSession, user_id: int, csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.STAFF_MANAGE, csrf_token=csrf_token)
    workspaces.remove_staff(session, ctx.workspace.id, user_id, actor=ctx.principal.actor,
                            actor_permissions=ctx.principal.permissions)
    return redirect(request, f"{SETTINGS}/staff?done=deleted")


# ---- background jobs -------------------------------------------------------------------------------------
@router.get("/console/jobs")
def jobs(request: Request, *, session: DbSession, status: str | None = None, cursor: str | None = None) -> Response:
    """The workspace's jobs (imports, backtests, refreshes, emails, webhooks), refreshed every few seconds."""
    ctx = console(request, session, P.JOBS_MANAGE)
    stmt = select(Job).where(Job.workspace_id == ctx.workspace.id)
    wanted = status if status in ("queued", "running", "succeeded", "superseded", "dead") else None
    if wanted:
        stmt = stmt.where(Job.status == wanted)
    rows, next_cursor = paginate_by_id(session, stmt, Job.id, cursor=cursor, limit=50)
    template = "console/_jobs.html" if request.headers.get("hx-target") == "jobs" else "console/jobs.html"
    return ctx.render(template, {
        "jobs": rows, "status": wanted,
        "next_url": f"/console/jobs?cursor={next_cursor}" + (f"&status={wanted}" if wanted else "")
        if next_cursor else None,
    })
