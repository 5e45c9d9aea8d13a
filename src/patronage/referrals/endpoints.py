"""HTTP routes for referrals: program settings, codes and links, attribution, staff review, stats."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page
from patronage.referrals import service, views
from patronage.referrals.models import Referral
from patronage.referrals.schemas import (
    CustomerReferralOut,
    DecisionIn,
    InvitesIn,
    ReferralCodeIn,
    ReferralCodeOut,
    ReferralCreate,
    ReferralOut,
    ReferralProgramIn,
    ReferralProgramOut,
    ReferralStats,
)
from patronage.rewards.access import customer_access
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["referrals"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.LOYALTY_READ))]
Writer = Annotated[Principal, Depends(require(Permission.LOYALTY_WRITE))]
Manager = Annotated[Principal, Depends(require(Permission.LOYALTY_MANAGE))]
CustomerReader = Annotated[Principal, Depends(customer_access(Permission.LOYALTY_READ))]
CustomerWriter = Annotated[Principal, Depends(customer_access(Permission.LOYALTY_WRITE))]
Status = Literal["pending", "converted", "rewarded", "held", "rejected", "cancelled"]


def _base_url(request: Request) -> str:
    return str(request.app.state.settings.base_url)


@router.get("/referrals/program", response_model=ReferralProgramOut)
def get_program(session: DbSession, principal: Reader) -> ReferralProgramOut:
    return views.program_out(session, principal.workspace_id)


@router.put("/referrals/program", response_model=ReferralProgramOut)
def put_program(body: ReferralProgramIn, session: DbSession, principal: Manager) -> ReferralProgramOut:
    service.update_program(session, principal.workspace_id, body, actor=principal.actor)
    return views.program_out(session, principal.workspace_id)


@router.get("/referrals/stats", response_model=ReferralStats)
def overall_stats(session: DbSession, principal: Reader) -> ReferralStats:
    return ReferralStats(**service.stats(session, principal.workspace_id))


@router.get("/referrals", response_model=Page[ReferralOut])
def list_referrals(
    session: DbSession, principal: Reader, *, status: Status | None = None, referrer_id: int | None = None,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ReferralOut]:
    rows, nxt = views.list_referrals(session, principal.workspace_id, status=status, referrer_id=referrer_id,
                                     cursor=cursor, limit=limit)
    return Page[ReferralOut](items=[ReferralOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/referrals", response_model=ReferralOut, status_code=status.HTTP_201_CREATED)
def create_referral(body: ReferralCreate, response: Response, session: DbSession, principal: Writer) -> Referral:
    """The shop reports a signup that came with a referral code (from the link or typed in)."""
    referral, created = service.attribute(
        session, principal.workspace_id, code=body.code, referred_id=body.referred_customer_id,
        signals={"ip": body.ip, "device_id": body.device_id, "address": body.address}, actor=principal.actor,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return referral


@router.get("/referrals/{referral_id}", response_model=ReferralOut)
def get_referral(referral_id: int, session: DbSession, principal: Reader) -> Referral:
    return views.get_referral(session, principal.workspace_id, referral_id)


@router.post("/referrals/{referral_id}/approve", response_model=ReferralOut)
def approve(referral_id: int, body: DecisionIn, session: DbSession, principal: Writer) -> Referral:
    return service.approve(session, principal.workspace_id, referral_id, note=body.note, actor=principal.actor)


@router.post("/referrals/{referral_id}/reject", response_model=ReferralOut)
def reject(referral_id: int, body: DecisionIn, session: DbSession, principal: Writer) -> Referral:
    return service.reject(session, principal.workspace_id, referral_id, note=body.note, actor=principal.actor)


@router.post("/referral-codes/{code}/clicks", response_model=ReferralCodeOut)
def record_click(code: str, request: Request, session: DbSession, principal: Writer) -> ReferralCodeOut:
    row = service.record_click(session, principal.workspace_id, code)
    return views.code_out(row, _base_url(request))


@router.get("/customers/{customer_id}/referral", response_model=CustomerReferralOut)
def customer_referral(
    customer_id: int, request: Request, session: DbSession, principal: CustomerReader
) -> CustomerReferralOut:
    return views.customer_referral(session, principal.workspace_id, customer_id, _base_url(request))


@router.post("/customers/{customer_id}/referral-code", response_model=ReferralCodeOut)
def ensure_code(
    customer_id: int, body: ReferralCodeIn, request: Request, session: DbSession, principal: CustomerWriter
) -> ReferralCodeOut:
    """The customer's code and link (created on first call; the same afterwards)."""
    row = service.ensure_code(session, principal.workspace_id, customer_id, ip=body.ip, device_id=body.device_id)
    return views.code_out(row, _base_url(request))


@router.post("/customers/{customer_id}/referral/invites", response_model=ReferralCodeOut)
def record_invites(
    customer_id: int, body: InvitesIn, request: Request, session: DbSession, principal: CustomerWriter
) -> ReferralCodeOut:
    row = service.record_invites(session, principal.workspace_id, customer_id, body.count)
    return views.code_out(row, _base_url(request))
