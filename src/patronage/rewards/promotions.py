"""Promotion codes outside points: batches of single-use codes, or one multi-use code with limits, for
campaigns and service recovery (apology codes bound to one customer)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, field_error
from patronage.kit.pagination import paginate_by_id
from patronage.rewards import coupons
from patronage.rewards import repository as repo
from patronage.rewards.coupon_schemas import CodeBatchIn, PromotionCreate, PromotionUpdate
from patronage.rewards.models import Promotion
from patronage.rewards.rules import RewardKind, discount_terms_problem
from patronage.workspaces.repository import get_workspace


def _coupon_row(promotion: Promotion, **extra: object) -> dict[str, object]:
    return {
        "origin": "promotion", "promotion_id": promotion.id, "discount_kind": promotion.discount_kind,
        "value": promotion.value, "currency": promotion.currency, "min_order_amount": promotion.min_order_amount,
        "per_customer_limit": promotion.per_customer_limit, "valid_from": promotion.valid_from,
        "expires_at": promotion.valid_until, "used_count": 0, "status": "active", "reward_id": None,
        "redemption_id": None, "customer_id": None, "sku": None, **extra,
    }


def get_promotion(session: Session, workspace_id: int, promotion_id: int) -> Promotion:
    return repo.PromotionRepository(session, workspace_id).get_or_404(promotion_id)


def list_promotions(
    session: Session, workspace_id: int, *, cursor: str | None, limit: int | None
) -> tuple[list[Promotion], str | None]:
    stmt = repo.PromotionRepository(session, workspace_id).select()
    return paginate_by_id(session, stmt, Promotion.id, cursor=cursor, limit=limit)


def create_promotion(session: Session, workspace_id: int, data: PromotionCreate, *, actor: str) -> Promotion:
    currency = data.currency
    if data.discount_kind == RewardKind.FIXED_DISCOUNT and currency is None:
        workspace = get_workspace(session, workspace_id)
        currency = workspace.currency if workspace else None
    problem = discount_terms_problem(data.discount_kind, data.value, currency, None)
    if problem:
        raise field_error(*problem)
    if data.valid_from and data.valid_until and data.valid_until <= data.valid_from:
        raise field_error("valid_until", "must be after valid_from")
    if data.code_type == "single_use" and (data.code is not None or data.max_uses_total is not None):
        field = "code" if data.code is not None else "max_uses_total"
        raise field_error(field, "only for multi_use promotions; single_use codes are generated in batches")
    if data.code is not None and not coupons.custom_code_free(session, workspace_id, data.code):
        raise Conflict(f"the code {data.code!r} is already in use", reason="code_taken")
    values = data.model_dump(exclude={"code"})
    values["currency"] = currency
    promotion = repo.PromotionRepository(session, workspace_id).new(**values)
    if data.code_type == "multi_use":
        row = _coupon_row(promotion, max_uses=data.max_uses_total)
        if data.code is not None:
            repo.CouponRepository(session, workspace_id).insert_many([{**row, "code": data.code}])
        else:
            coupons.new_promotion_coupons(session, workspace_id, [row])
        promotion.codes_generated = 1
        session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="promotion.created", subject_type="promotion",
          subject_id=promotion.id, data=data.model_dump(mode="json"))
    return promotion


def update_promotion(
    session: Session, workspace_id: int, promotion_id: int, data: PromotionUpdate, *, actor: str
) -> Promotion:
    promotion = repo.PromotionRepository(session, workspace_id).get_or_404(promotion_id, for_update=True)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(promotion, field, value)
    if "valid_until" in changes:
        repo.CouponRepository(session, workspace_id).move_expiry(promotion_id, changes["valid_until"])
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="promotion.updated", subject_type="promotion",
          subject_id=promotion.id, data=data.model_dump(mode="json", exclude_unset=True))
    return promotion


def generate_batch(
    session: Session, workspace_id: int, promotion_id: int, data: CodeBatchIn, *, actor: str
) -> list[str]:
    """``count`` new single-use codes for the promotion; optionally bound to one customer."""
    promotion = repo.PromotionRepository(session, workspace_id).get_or_404(promotion_id, for_update=True)
    if promotion.code_type != "single_use":
        raise Conflict("a multi_use promotion has one shared code", reason="not_single_use")
    if data.customer_id is not None and not repo.customer_exists(session, workspace_id, data.customer_id):
        raise field_error("customer_id", f"customer {data.customer_id} does not exist")
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise field_error("expires_at", "must be in the future")
    extra: dict[str, object] = {"max_uses": 1, "customer_id": data.customer_id}
    if data.expires_at is not None:
        extra["expires_at"] = data.expires_at
    rows = [_coupon_row(promotion, **extra) for _ in range(data.count)]
    codes = coupons.new_promotion_coupons(session, workspace_id, rows, prefix=data.prefix)
    repo.PromotionRepository(session, workspace_id).count_codes(promotion.id, data.count)
    session.refresh(promotion)
    audit(session, workspace_id=workspace_id, actor=actor, action="promotion.codes_generated",
          subject_type="promotion", subject_id=promotion.id,
          data={"count": data.count, "customer_id": data.customer_id, "prefix": data.prefix})
    return codes


def shared_code(session: Session, workspace_id: int, promotion: Promotion) -> str | None:
    if promotion.code_type != "multi_use":
        return None
    coupon = repo.CouponRepository(session, workspace_id).first_of_promotion(promotion.id)
    return coupon.code if coupon else None
