"""HTTP routes for checkout (validate / consume / release a coupon) and promotion codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy.orm import Session

from patronage.kit import ratelimit
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page
from patronage.rewards import coupons, promotions, views
from patronage.rewards.coupon_schemas import (
    CodeBatchIn,
    CodeBatchOut,
    CouponCheckIn,
    CouponConsumeIn,
    CouponReleaseIn,
    CouponUseOut,
    CouponValidation,
    PromotionCreate,
    PromotionOut,
    PromotionUpdate,
)
from patronage.rewards.schemas import CouponOut
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["coupons"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.LOYALTY_READ))]
Checkout = Annotated[Principal, Depends(require(Permission.LOYALTY_WRITE))]
Manager = Annotated[Principal, Depends(require(Permission.LOYALTY_MANAGE))]
Limit = Annotated[int, Query(ge=1, le=200)]


# ---- checkout -------------------------------------------------------------------------------------------
@router.post("/coupons/validate", response_model=CouponValidation)
def validate_coupon(
    body: CouponCheckIn, request: Request, session: DbSession, principal: Checkout
) -> CouponValidation:
    # Per caller (API key, staff user): validation answers "does this code exist?", so guessing codes is throttled.
    ratelimit.hit(request.app.state.db, ratelimit.COUPON_VALIDATION, f"{principal.workspace_id}:{principal.actor}")
    check = coupons.validate(session, principal.workspace_id, code=body.code, order_amount=body.order_amount,
                             currency=body.currency, customer_id=body.customer_id)
    return views.validation_out(check)


@router.post("/coupons/consume", response_model=CouponUseOut)
def consume_coupon(body: CouponConsumeIn, session: DbSession, principal: Checkout) -> CouponUseOut:
    use, coupon, replayed = coupons.consume(
        session, principal.workspace_id, code=body.code, order_ref=body.order_id, order_amount=body.order_amount,
        currency=body.currency, customer_id=body.customer_id, actor=principal.actor,
    )
    return views.use_out(use, coupon, replayed=replayed)


@router.post("/coupons/release", response_model=CouponUseOut)
def release_coupon(body: CouponReleaseIn, session: DbSession, principal: Checkout) -> CouponUseOut:
    use, coupon = coupons.release(session, principal.workspace_id, code=body.code, order_ref=body.order_id,
                                  actor=principal.actor)
    return views.use_out(use, coupon, replayed=False)


# ---- promotions -----------------------------------------------------------------------------------------
def _promotion_out(session: Session, workspace_id: int, promotion: object) -> PromotionOut:
    out = PromotionOut.model_validate(promotion)
    out.code = promotions.shared_code(session, workspace_id, promotion)  # type: ignore[arg-type]
    return out


@router.get("/promotions", response_model=Page[PromotionOut])
def list_promotions(
    session: DbSession, principal: Manager, cursor: str | None = None, limit: Limit = 50
) -> Page[PromotionOut]:
    rows, nxt = promotions.list_promotions(session, principal.workspace_id, cursor=cursor, limit=limit)
    return Page[PromotionOut](items=[_promotion_out(session, principal.workspace_id, p) for p in rows],
                              next_cursor=nxt)


@router.post("/promotions", response_model=PromotionOut, status_code=status.HTTP_201_CREATED)
def create_promotion(body: PromotionCreate, session: DbSession, principal: Manager) -> PromotionOut:
    promotion = promotions.create_promotion(session, principal.workspace_id, body, actor=principal.actor)
    return _promotion_out(session, principal.workspace_id, promotion)


@router.get("/promotions/{promotion_id}", response_model=PromotionOut)
def get_promotion(promotion_id: int, session: DbSession, principal: Manager) -> PromotionOut:
    promotion = promotions.get_promotion(session, principal.workspace_id, promotion_id)
    return _promotion_out(session, principal.workspace_id, promotion)


@router.patch("/promotions/{promotion_id}", response_model=PromotionOut)
def update_promotion(promotion_id: int, body: PromotionUpdate, session: DbSession, principal: Manager) -> PromotionOut:
    promotion = promotions.update_promotion(session, principal.workspace_id, promotion_id, body, actor=principal.actor)
    return _promotion_out(session, principal.workspace_id, promotion)


@router.post("/promotions/{promotion_id}/codes", response_model=CodeBatchOut, status_code=status.HTTP_201_CREATED)
def generate_codes(promotion_id: int, body: CodeBatchIn, session: DbSession, principal: Manager) -> CodeBatchOut:
    codes = promotions.generate_batch(session, principal.workspace_id, promotion_id, body, actor=principal.actor)
    return CodeBatchOut(promotion_id=promotion_id, count=len(codes), codes=codes)


@router.get("/promotions/{promotion_id}/codes", response_model=Page[CouponOut])
def list_codes(
    promotion_id: int, session: DbSession, principal: Manager, cursor: str | None = None, limit: Limit = 50
) -> Page[CouponOut]:
    promotions.get_promotion(session, principal.workspace_id, promotion_id)
    items, nxt = views.list_coupons(session, principal.workspace_id, promotion_id=promotion_id, cursor=cursor,
                                    limit=limit)
    return Page[CouponOut](items=items, next_cursor=nxt)


@router.get("/coupons/{code}", response_model=CouponOut)
def get_coupon(code: str, session: DbSession, principal: Reader) -> CouponOut:
    return CouponOut.of(coupons.get_by_code(session, principal.workspace_id, code))
