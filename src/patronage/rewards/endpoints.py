"""HTTP routes for the reward catalog, redemptions (member and staff), fulfilments and the loyalty summary."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy.orm import Session

from patronage.kit import ratelimit
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page
from patronage.rewards import service, views
from patronage.rewards.access import customer_access
from patronage.rewards.models import Fulfilment, Reward
from patronage.rewards.schemas import (
    CancelRedemptionIn,
    CouponOut,
    FulfilmentOut,
    FulfilmentUpdate,
    LoyaltySummary,
    RedeemIn,
    RedemptionOut,
    RestockIn,
    RewardCreate,
    RewardOffer,
    RewardOut,
    RewardUpdate,
)
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["rewards"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.LOYALTY_READ))]
Writer = Annotated[Principal, Depends(require(Permission.LOYALTY_WRITE))]
Manager = Annotated[Principal, Depends(require(Permission.LOYALTY_MANAGE))]
CustomerReader = Annotated[Principal, Depends(customer_access(Permission.LOYALTY_READ))]
CustomerWriter = Annotated[Principal, Depends(customer_access(Permission.LOYALTY_WRITE))]
Limit = Annotated[int, Query(ge=1, le=200)]


# ---- catalog (staff) ----------------------------------------------------------------------------------
@router.get("/rewards", response_model=Page[RewardOut])
def list_rewards(
    session: DbSession, principal: Reader, active: bool | None = None, cursor: str | None = None, limit: Limit = 50
) -> Page[RewardOut]:
    rows, nxt = views.list_rewards(session, principal.workspace_id, active=active, cursor=cursor, limit=limit)
    return Page[RewardOut](items=[RewardOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/rewards", response_model=RewardOut, status_code=status.HTTP_201_CREATED)
def create_reward(body: RewardCreate, session: DbSession, principal: Manager) -> Reward:
    return service.create_reward(session, principal.workspace_id, body, actor=principal.actor)


@router.get("/rewards/{reward_id}", response_model=RewardOut)
def get_reward(reward_id: int, session: DbSession, principal: Reader) -> Reward:
    return service.get_reward(session, principal.workspace_id, reward_id)


@router.patch("/rewards/{reward_id}", response_model=RewardOut)
def update_reward(reward_id: int, body: RewardUpdate, session: DbSession, principal: Manager) -> Reward:
    return service.update_reward(session, principal.workspace_id, reward_id, body, actor=principal.actor)


@router.post("/rewards/{reward_id}/restock", response_model=RewardOut)
def restock(reward_id: int, body: RestockIn, session: DbSession, principal: Manager) -> Reward:
    return service.restock(session, principal.workspace_id, reward_id, body.delta, actor=principal.actor)


# ---- a customer's rewards (member or staff) ---------------------------------------------------------------
@router.get("/customers/{customer_id}/loyalty", response_model=LoyaltySummary)
def loyalty_summary(
    customer_id: int, request: Request, session: DbSession, principal: CustomerReader
) -> LoyaltySummary:
    return views.loyalty_summary(session, principal.workspace_id, customer_id,
                                 base_url=request.app.state.settings.base_url)


@router.get("/customers/{customer_id}/rewards", response_model=list[RewardOffer])
def customer_rewards(customer_id: int, session: DbSession, principal: CustomerReader) -> list[RewardOffer]:
    return views.customer_offers(session, principal.workspace_id, customer_id)


@router.post("/customers/{customer_id}/rewards/{reward_id}/redeem", response_model=RedemptionOut,
             status_code=status.HTTP_201_CREATED)
def redeem(
    customer_id: int, reward_id: int, body: RedeemIn, request: Request, *, session: DbSession,
    principal: CustomerWriter,
) -> RedemptionOut:
    # Per customer, whoever asks (the portal's redeem form counts against the same budget).
    ratelimit.hit(request.app.state.db, ratelimit.REDEMPTION, f"member:{principal.workspace_id}:{customer_id}")
    redemption = service.redeem(session, principal.workspace_id, customer_id, reward_id, request_id=body.request_id,
                                actor=principal.actor, details=body.details)
    return views.redemption_out(session, principal.workspace_id, redemption)


@router.get("/customers/{customer_id}/redemptions", response_model=Page[RedemptionOut])
def customer_redemptions(
    customer_id: int, session: DbSession, principal: CustomerReader, cursor: str | None = None, limit: Limit = 50
) -> Page[RedemptionOut]:
    items, nxt = views.list_redemptions(session, principal.workspace_id, customer_id=customer_id, reward_id=None,
                                        cursor=cursor, limit=limit)
    return Page[RedemptionOut](items=items, next_cursor=nxt)


@router.get("/customers/{customer_id}/coupons", response_model=Page[CouponOut])
def customer_coupons(
    customer_id: int, session: DbSession, principal: CustomerReader, cursor: str | None = None, limit: Limit = 50
) -> Page[CouponOut]:
    items, nxt = views.list_coupons(session, principal.workspace_id, customer_id=customer_id, cursor=cursor,
                                    limit=limit)
    return Page[CouponOut](items=items, next_cursor=nxt)


# ---- redemptions and fulfilments (staff) ------------------------------------------------------------------
@router.get("/redemptions", response_model=Page[RedemptionOut])
def list_redemptions(
    session: DbSession, principal: Reader, *, customer_id: int | None = None, reward_id: int | None = None,
    cursor: str | None = None, limit: Limit = 50,
) -> Page[RedemptionOut]:
    items, nxt = views.list_redemptions(session, principal.workspace_id, customer_id=customer_id,
                                        reward_id=reward_id, cursor=cursor, limit=limit)
    return Page[RedemptionOut](items=items, next_cursor=nxt)


@router.post("/redemptions/{redemption_id}/cancel", response_model=RedemptionOut)
def cancel_redemption(
    redemption_id: int, body: CancelRedemptionIn, session: DbSession, principal: Writer
) -> RedemptionOut:
    redemption = service.cancel_redemption(session, principal.workspace_id, redemption_id, reason=body.reason,
                                           actor=principal.actor)
    return views.redemption_out(session, principal.workspace_id, redemption)


@router.get("/fulfilments", response_model=Page[FulfilmentOut])
def list_fulfilments(
    session: DbSession, principal: Reader, status: Literal["pending", "fulfilled", "cancelled"] | None = "pending",
    cursor: str | None = None, limit: Limit = 50,
) -> Page[FulfilmentOut]:
    rows, nxt = views.list_fulfilments(session, principal.workspace_id, status=status, cursor=cursor, limit=limit)
    return Page[FulfilmentOut](items=[FulfilmentOut.model_validate(f) for f in rows], next_cursor=nxt)


@router.post("/fulfilments/{fulfilment_id}", response_model=FulfilmentOut)
def update_fulfilment(fulfilment_id: int, body: FulfilmentUpdate, session: DbSession, principal: Writer) -> Fulfilment:
    return service.update_fulfilment(session, principal.workspace_id, fulfilment_id, status=body.status,
                                     note=body.note, actor=principal.actor)
