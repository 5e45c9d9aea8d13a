"""API keys (a new key's secret is shown once) and webhooks (endpoints, deliveries, redelivery)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from patronage.kit.errors import Conflict, Forbidden, ValidationFailed
from patronage.kit.http.route import after_request
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.console.forms import field_errors
from patronage.web.route import WebRoute, redirect
from patronage.webhooks import service as webhooks
from patronage.webhooks.schemas import EndpointCreate
from patronage.workspaces import repository as repo
from patronage.workspaces import service as workspaces
from patronage.workspaces.auth import API_KEY_CACHE
from patronage.workspaces.permissions import DEFAULT_API_KEY_SCOPES, Permission

router = APIRouter(route_class=WebRoute, include_in_schema=False)
KEYS = "/console/settings/api-keys"
HOOKS = "/console/settings/webhooks"


# ---- API keys -------------------------------------------------------------------------------------------
def _keys_page(ctx: Console, *, created: Any = None, secret: str | None = None,
               errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return ctx.render("console/api_keys.html", {
        "keys": repo.ApiKeyRepository(ctx.session, ctx.workspace.id).list(), "created": created, "secret": secret,
        "scopes": [(p.value, p.value in DEFAULT_API_KEY_SCOPES) for p in Permission if ctx.can(p.value)],
        "errors": errors or {},
    }, status_code=status_code)


@router.get(KEYS)
def api_keys(request: Request, *, session: DbSession) -> Response:
    return _keys_page(console(request, session, P.API_KEYS_MANAGE))


@router.post(KEYS)
def create_key(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()],
    name: Annotated[str, Form(max_length=200)],
    scopes: Annotated[list[str] | None, Form(alias="scope")] = None,
) -> Response:
    ctx = console(request, session, P.API_KEYS_MANAGE, csrf_token=csrf_token)
    if not name.strip():
        return _keys_page(ctx, errors={"name": ctx._("Give the key a name.")}, status_code=422)
    try:
        key, secret = workspaces.create_api_key(
            session, ctx.workspace.id, name=name.strip(), scopes=scopes or None, actor=ctx.principal.actor,
            actor_permissions=ctx.principal.permissions, created_by_user_id=ctx.principal.user_id,
        )
    except Forbidden as exc:
        session.rollback()
        return _keys_page(ctx, errors={"scope": exc.detail}, status_code=403)
    # Rendered, not redirected: the secret exists only in this response (only its digest is stored).
    return _keys_page(ctx, created=key, secret=secret, status_code=201)


@router.post(KEYS + "/{key_id}/revoke")
def revoke_key(request: Request, *, session: DbSession, key_id: int, csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.API_KEYS_MANAGE, csrf_token=csrf_token)
    workspaces.revoke_api_key(session, ctx.workspace.id, key_id, actor=ctx.principal.actor)
    after_request(request, API_KEY_CACHE.clear)  # once committed, as the API route does
    return redirect(request, f"{KEYS}?done=revoked")


# ---- webhooks ------------------------------------------------------------------------------------------
def _hooks_page(ctx: Console, *, created: Any = None, errors: dict[str, str] | None = None,
                form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    return ctx.render("console/webhooks.html", {
        "endpoints": webhooks.list_endpoints(ctx.session, ctx.workspace.id), "created": created,
        "errors": errors or {}, "form": form or {},
    }, status_code=status_code)


@router.get(HOOKS)
def webhooks_page(request: Request, *, session: DbSession) -> Response:
    return _hooks_page(console(request, session, P.WEBHOOKS_MANAGE))


@router.post(HOOKS)
def create_endpoint(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()],
    url: Annotated[str, Form(max_length=2000)],
    event_types: Annotated[str, Form(max_length=4000)] = "*", description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    ctx = console(request, session, P.WEBHOOKS_MANAGE, csrf_token=csrf_token)
    form = {"url": url, "event_types": event_types, "description": description}
    try:
        body = EndpointCreate(url=url.strip(), description=description,
                              event_types=[t for t in event_types.replace("\n", ",").split(",") if t.strip()] or ["*"])
        endpoint = webhooks.create_endpoint(session, ctx.workspace.id, body, actor=ctx.principal.actor)
    except (ValidationError, ValidationFailed, Conflict) as exc:
        session.rollback()
        errors = field_errors(exc) if not isinstance(exc, Conflict) else {"url": exc.detail}
        return _hooks_page(ctx, errors=errors, form=form, status_code=422)
    return _hooks_page(ctx, created=endpoint, status_code=201)  # shows the signing secret once


@router.get(HOOKS + "/{endpoint_id}")
def endpoint_page(request: Request, *, session: DbSession, endpoint_id: int, status: str | None = None,
                  cursor: str | None = None) -> Response:
    ctx = console(request, session, P.WEBHOOKS_MANAGE)
    endpoint = webhooks.get_endpoint(session, ctx.workspace.id, endpoint_id)
    wanted = status if status in ("pending", "succeeded", "failed") else None
    deliveries, next_cursor = webhooks.list_deliveries(session, ctx.workspace.id, endpoint_id, status=wanted,
                                                       cursor=cursor, limit=25)
    return ctx.render("console/webhook.html", {
        "endpoint": endpoint, "deliveries": deliveries, "status": wanted,
        "next_url": f"{HOOKS}/{endpoint_id}?cursor={next_cursor}" + (f"&status={wanted}" if wanted else "")
        if next_cursor else None,
    })


@router.post(HOOKS + "/{endpoint_id}/test")
def test_event(
    request: Request, *, session: DbSession, endpoint_id: int, csrf_token: Annotated[str, Form()],
) -> Response:
    ctx = console(request, session, P.WEBHOOKS_MANAGE, csrf_token=csrf_token)
    webhooks.send_test_event(session, ctx.workspace.id, endpoint_id)
    return redirect(request, f"{HOOKS}/{endpoint_id}?done=queued")


@router.post(HOOKS + "/{endpoint_id}/delete")
def delete_endpoint(request: Request, *, session: DbSession, endpoint_id: int,
                    csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.WEBHOOKS_MANAGE, csrf_token=csrf_token)
    webhooks.delete_endpoint(session, ctx.workspace.id, endpoint_id, actor=ctx.principal.actor)
    return redirect(request, f"{HOOKS}?done=deleted")


@router.post(HOOKS + "/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver(request: Request, *, session: DbSession, endpoint_id: int, delivery_id: int,
              csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.WEBHOOKS_MANAGE, csrf_token=csrf_token)
    webhooks.redeliver(session, ctx.workspace.id, endpoint_id, delivery_id, actor=ctx.principal.actor)
    return redirect(request, f"{HOOKS}/{endpoint_id}?done=queued")
