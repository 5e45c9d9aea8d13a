"""Member sign-in over JSON, for the portal and for shops' own apps. Workspaces are named by slug."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session

from patronage.config import Settings
from patronage.kit import ratelimit
from patronage.kit.errors import NotFound
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.members import service
from patronage.members.schemas import MagicLinkAccepted, MagicLinkExchange, MagicLinkRequest, MemberSessionOut
from patronage.workspaces import repository as workspaces
from patronage.workspaces.auth import MEMBER_COOKIE, Principal, require_member
from patronage.workspaces.models import Workspace

router = APIRouter(route_class=UnitOfWorkRoute, tags=["member sign-in"])
DbSession = Annotated[Session, Depends(request_session)]


def _workspace(session: Session, slug: str) -> Workspace:
    workspace = workspaces.get_workspace_by_slug(session, slug)
    if workspace is None:
        raise NotFound(f"workspace {slug!r} not found")
    return workspace


@router.post("/portal/{slug}/magic-link", response_model=MagicLinkAccepted, status_code=status.HTTP_202_ACCEPTED)
def request_magic_link(slug: str, body: MagicLinkRequest, request: Request, session: DbSession) -> MagicLinkAccepted:
    settings: Settings = request.app.state.settings
    ip = request.client.host if request.client else None
    ratelimit.hit(request.app.state.db, ratelimit.MAGIC_LINK, f"{slug}:{body.email.lower()}")
    ratelimit.hit(request.app.state.db, ratelimit.MAGIC_LINK_BY_IP, f"ip:{ip}")
    service.request_magic_link(session, settings, _workspace(session, slug), body.email, ip=ip)
    return MagicLinkAccepted()


@router.post("/portal/{slug}/sessions", response_model=MemberSessionOut, status_code=status.HTTP_201_CREATED)
def exchange_magic_link(
    slug: str, body: MagicLinkExchange, request: Request, response: Response, session: DbSession
) -> MemberSessionOut:
    settings: Settings = request.app.state.settings
    workspace = _workspace(session, slug)
    member_session, secret = service.consume_magic_link(session, settings, workspace.id, body.token)
    response.set_cookie(
        MEMBER_COOKIE, secret, max_age=settings.member_session_ttl_days * 86400, httponly=True,
        secure=settings.cookie_secure, samesite="lax", path="/",
    )
    return MemberSessionOut(
        customer_id=member_session.customer_id, token=secret, csrf_token=member_session.csrf_token,
        expires_at=member_session.expires_at,
    )


@router.delete("/portal/session", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(session: DbSession, principal: Annotated[Principal, Depends(require_member)]) -> Response:
    from patronage.members.models import MemberSession

    if principal.session_id is not None:
        member_session = session.get(MemberSession, principal.session_id)
        if member_session is not None and member_session.workspace_id == principal.workspace_id:
            service.end_member_session(session, member_session)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(MEMBER_COOKIE, path="/")
    return response
