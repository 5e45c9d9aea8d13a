"""HTTP routes for the workspace, sign-in, staff and API keys. Translation only: rules live in service.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patronage.config import Settings
from patronage.kit.errors import NotFound
from patronage.kit.http.route import UnitOfWorkRoute, after_request, request_session
from patronage.workspaces import repository as repo
from patronage.workspaces import service
from patronage.workspaces.auth import (
    API_KEY_CACHE,
    SESSION_COOKIE,
    Principal,
    authenticate,
    cached_workspace,
    limit_login,
    remember_workspace,
    require,
)
from patronage.workspaces.models import Membership, Workspace
from patronage.workspaces.permissions import Permission, Role, permissions_for
from patronage.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginRequest,
    SessionOut,
    StaffCreate,
    StaffOut,
    StaffUpdate,
    UserOut,
    WorkspaceOut,
    WorkspaceUpdate,
)

router = APIRouter(route_class=UnitOfWorkRoute)
DbSession = Annotated[Session, Depends(request_session)]


def _workspace(session: Session, principal: Principal) -> Workspace:
    workspace = repo.get_workspace(session, principal.workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


def _staff_out(m: Membership) -> StaffOut:
    return StaffOut(user_id=m.user_id, email=m.user.email, name=m.user.name, role=Role(m.role))


@router.get("/workspace", response_model=WorkspaceOut, tags=["workspace"])
async def get_workspace(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.WORKSPACE_READ))]
) -> Response:
    """A coroutine: an API key's cached snapshot answers with no query and no worker thread (and no
    session dependency: the request's session is only used on a miss)."""
    body = cached_workspace(request)
    if body is None:
        generation = API_KEY_CACHE.generation
        workspace = await run_in_threadpool(_workspace, request.state.session, principal)
        body = WorkspaceOut.model_validate(workspace).model_dump_json().encode()
        remember_workspace(request, principal, body, generation)
    return Response(body, media_type="application/json")


@router.patch("/workspace", response_model=WorkspaceOut, tags=["workspace"])
def update_workspace(
    body: WorkspaceUpdate,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.WORKSPACE_MANAGE))],
) -> Workspace:
    return service.update_workspace(session, _workspace(session, principal), body, actor=principal.actor)


# ---- sign-in ---------------------------------------------------------------------------------------
@router.post("/auth/login", response_model=SessionOut, tags=["auth"])
def login(body: LoginRequest, request: Request, response: Response, session: DbSession) -> SessionOut:
    settings: Settings = request.app.state.settings
    limit_login(request, body.email)
    user = service.check_password(session, body.email, body.password)
    staff_session, membership, token = service.start_session(
        session,
        user,
        workspace_slug=body.workspace,
        ttl=timedelta(hours=settings.session_ttl_hours),
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    workspace = repo.get_workspace(session, membership.workspace_id)
    return SessionOut(
        user=UserOut.model_validate(user),
        workspace=WorkspaceOut.model_validate(workspace),
        role=Role(membership.role),
        permissions=sorted(permissions_for(membership.role)),
        csrf_token=staff_session.csrf_token,
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def logout(
    request: Request, session: DbSession, principal: Annotated[Principal, Depends(authenticate)]
) -> Response:
    if principal.session_id is not None:
        staff_session = repo.StaffSessionRepository(session, principal.workspace_id).get(principal.session_id)
        if staff_session is not None:
            service.end_session(session, staff_session)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- staff -----------------------------------------------------------------------------------------
@router.get("/staff", response_model=list[StaffOut], tags=["staff"])
def list_staff(
    session: DbSession, principal: Annotated[Principal, Depends(require(Permission.WORKSPACE_READ))]
) -> list[StaffOut]:
    return [_staff_out(m) for m in repo.MembershipRepository(session, principal.workspace_id).list()]


@router.post("/staff", response_model=StaffOut, status_code=status.HTTP_201_CREATED, tags=["staff"])
def add_staff(
    body: StaffCreate,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_MANAGE))],
) -> StaffOut:
    membership = service.add_staff(
        session, principal.workspace_id, email=body.email, name=body.name, password=body.password,
        role=body.role, actor=principal.actor, actor_permissions=principal.permissions,
    )
    return _staff_out(membership)


@router.patch("/staff/{user_id}", response_model=StaffOut, tags=["staff"])
def change_staff_role(
    user_id: int,
    body: StaffUpdate,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_MANAGE))],
) -> StaffOut:
    membership = service.change_role(
        session, principal.workspace_id, user_id, body.role, actor=principal.actor,
        actor_permissions=principal.permissions,
    )
    return _staff_out(membership)


@router.delete("/staff/{user_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["staff"])
def remove_staff(
    user_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_MANAGE))],
) -> Response:
    service.remove_staff(
        session, principal.workspace_id, user_id, actor=principal.actor, actor_permissions=principal.permissions
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- API keys --------------------------------------------------------------------------------------
@router.get("/api-keys", response_model=list[ApiKeyOut], tags=["api keys"])
def list_api_keys(
    session: DbSession, principal: Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE))]
) -> list[ApiKeyOut]:
    keys = repo.ApiKeyRepository(session, principal.workspace_id).list()
    return [ApiKeyOut.model_validate(k) for k in keys]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED, tags=["api keys"])
def create_api_key(
    body: ApiKeyCreate,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE))],
) -> ApiKeyCreated:
    key, secret = service.create_api_key(
        session, principal.workspace_id, name=body.name,
        scopes=[s.value for s in body.scopes] if body.scopes is not None else None,
        expires_at=body.expires_at, actor=principal.actor, actor_permissions=principal.permissions,
        created_by_user_id=principal.user_id,
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api keys"])
def revoke_api_key(
    key_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE))],
) -> ApiKeyOut:
    key = service.revoke_api_key(session, principal.workspace_id, key_id, actor=principal.actor)
    # Once the revocation is committed: cleared earlier, a concurrent request could cache the key again.
    after_request(request, API_KEY_CACHE.clear)
    return ApiKeyOut.model_validate(key)
