"""HTTP routes for tiers: program settings, the ladder, a customer's tier and staff overrides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy.orm import Session

from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.rewards.access import customer_access
from patronage.tiers import qualification, service
from patronage.tiers.models import Tier
from patronage.tiers.schemas import (
    CustomerTierOut,
    TierCount,
    TierCreate,
    TierOut,
    TierOverrideIn,
    TierProgramIn,
    TierProgramOut,
    TierUpdate,
)
from patronage.tiers.views import customer_tier_out
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["tiers"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.LOYALTY_READ))]
Manager = Annotated[Principal, Depends(require(Permission.LOYALTY_MANAGE))]
Writer = Annotated[Principal, Depends(require(Permission.LOYALTY_WRITE))]
CustomerReader = Annotated[Principal, Depends(customer_access(Permission.LOYALTY_READ))]


def _program_out(settings: service.ProgramSettings) -> TierProgramOut:
    return TierProgramOut(metric=settings.metric, window=settings.window, grace_days=settings.grace_days,
                          downgrade_policy=settings.downgrade_policy)


@router.get("/tiers/program", response_model=TierProgramOut)
def get_program(session: DbSession, principal: Reader) -> TierProgramOut:
    return _program_out(service.program(session, principal.workspace_id))


@router.put("/tiers/program", response_model=TierProgramOut)
def put_program(body: TierProgramIn, session: DbSession, principal: Manager) -> TierProgramOut:
    service.update_program(session, principal.workspace_id, body, actor=principal.actor)
    return _program_out(service.program(session, principal.workspace_id))


@router.get("/tiers", response_model=list[TierOut])
def list_tiers(session: DbSession, principal: Reader) -> list[Tier]:
    return service.list_tiers(session, principal.workspace_id)


@router.get("/tiers/stats", response_model=list[TierCount])
def tier_stats(session: DbSession, principal: Reader) -> list[TierCount]:
    return [
        TierCount(tier_id=tier.id if tier else None, name=tier.name if tier else None, customers=n)
        for tier, n in service.tier_counts(session, principal.workspace_id)
    ]


@router.post("/tiers", response_model=TierOut, status_code=status.HTTP_201_CREATED)
def create_tier(body: TierCreate, session: DbSession, principal: Manager) -> Tier:
    return service.create_tier(session, principal.workspace_id, body, actor=principal.actor)


@router.get("/tiers/{tier_id}", response_model=TierOut)
def get_tier(tier_id: int, session: DbSession, principal: Reader) -> Tier:
    return service.get_tier(session, principal.workspace_id, tier_id)


@router.patch("/tiers/{tier_id}", response_model=TierOut)
def update_tier(tier_id: int, body: TierUpdate, session: DbSession, principal: Manager) -> Tier:
    return service.update_tier(session, principal.workspace_id, tier_id, body, actor=principal.actor)


@router.delete("/tiers/{tier_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tier(tier_id: int, session: DbSession, principal: Manager) -> Response:
    service.delete_tier(session, principal.workspace_id, tier_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/customers/{customer_id}/tier", response_model=CustomerTierOut)
def get_customer_tier(customer_id: int, session: DbSession, principal: CustomerReader) -> CustomerTierOut:
    return customer_tier_out(session, principal.workspace_id, customer_id)


@router.put("/customers/{customer_id}/tier/override", response_model=CustomerTierOut)
def put_override(customer_id: int, body: TierOverrideIn, session: DbSession, principal: Writer) -> CustomerTierOut:
    qualification.override(session, principal.workspace_id, customer_id, tier_id=body.tier_id, until=body.until,
                           reason=body.reason, actor=principal.actor)
    return customer_tier_out(session, principal.workspace_id, customer_id)


@router.delete("/customers/{customer_id}/tier/override", response_model=CustomerTierOut)
def delete_override(customer_id: int, session: DbSession, principal: Writer) -> CustomerTierOut:
    qualification.end_override(session, principal.workspace_id, customer_id, actor=principal.actor)
    return customer_tier_out(session, principal.workspace_id, customer_id)
