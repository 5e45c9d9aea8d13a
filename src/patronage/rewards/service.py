"""The reward catalog and redemptions. Lock order: the customer's point account, then the reward row.

Public for other domains: ``grant`` (a reward without spending points, e.g. a referral's welcome
reward; idempotent by source) and ``offers`` (what a customer can redeem).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound, field_error
from patronage.kit.jobs import record_event
from patronage.ledger import service as ledger
from patronage.rewards import coupons
from patronage.rewards import repository as repo
from patronage.rewards.errors import RedemptionNotCancellable, RewardUnavailable
from patronage.rewards.models import Coupon, Fulfilment, Redemption, Reward
from patronage.rewards.rules import COUPON_KINDS, RewardKind, RewardTerms, discount_terms_problem, unavailable_reason
from patronage.rewards.schemas import RewardCreate, RewardUpdate
from patronage.rewards.segments import in_any_segment
from patronage.tiers.service import effective_tier_id
from patronage.workspaces.repository import get_workspace

SPEND_SOURCE = "reward_redemption"


# ---- catalog ----------------------------------------------------------------------------------------------
def _check(session: Session, workspace_id: int, values: dict[str, Any]) -> None:
    problem = discount_terms_problem(values["kind"], values.get("value"), values.get("currency"), values.get("sku"))
    if problem:
        raise field_error(*problem)
    start, end = values.get("valid_from"), values.get("valid_until")
    if start is not None and end is not None and end <= start:
        raise field_error("valid_until", "must be after valid_from")
    tiers = set(values.get("tier_ids") or [])
    if tiers:
        from patronage.tiers.service import list_tiers

        unknown = tiers - {t.id for t in list_tiers(session, workspace_id)}
        if unknown:
            raise field_error("tier_ids", f"unknown tier(s): {sorted(unknown)}")


def get_reward(session: Session, workspace_id: int, reward_id: int) -> Reward:
    return repo.RewardRepository(session, workspace_id).get_or_404(reward_id)


def create_reward(session: Session, workspace_id: int, data: RewardCreate, *, actor: str) -> Reward:
    values = data.model_dump()
    if values["kind"] == RewardKind.FIXED_DISCOUNT and values["currency"] is None:
        workspace = get_workspace(session, workspace_id)
        values["currency"] = workspace.currency if workspace else None
    _check(session, workspace_id, values)
    reward = repo.RewardRepository(session, workspace_id).new(**values)
    audit(session, workspace_id=workspace_id, actor=actor, action="reward.created", subject_type="reward",
          subject_id=reward.id, data=data.model_dump(mode="json"))
    return reward


def update_reward(session: Session, workspace_id: int, reward_id: int, data: RewardUpdate, *, actor: str) -> Reward:
    reward = repo.RewardRepository(session, workspace_id).get_or_404(reward_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    nullable = {"image_url", "value", "currency", "sku", "min_order_amount", "stock", "per_customer_limit",
                "valid_from", "valid_until", "coupon_valid_days"}
    for field, value in changes.items():
        if value is None and field not in nullable:
            raise field_error(field, "must not be null")
    current = {c: getattr(reward, c) for c in ("kind", "value", "currency", "sku", "valid_from", "valid_until")}
    _check(session, workspace_id, {**current, **changes})
    for field, value in changes.items():
        setattr(reward, field, value)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="reward.updated", subject_type="reward",
          subject_id=reward.id, data=data.model_dump(mode="json", exclude_unset=True))
    return reward


def restock(session: Session, workspace_id: int, reward_id: int, delta: int, *, actor: str) -> Reward:
    rewards = repo.RewardRepository(session, workspace_id)
    reward = rewards.get_or_404(reward_id)
    if reward.stock is None:
        raise Conflict("this reward has unlimited stock; set a stock first", reason="unlimited_stock")
    if not rewards.restock(reward_id, delta):
        raise field_error("delta", "the stock would go below 0")
    session.refresh(reward)
    audit(session, workspace_id=workspace_id, actor=actor, action="reward.restocked", subject_type="reward",
          subject_id=reward_id, data={"delta": delta, "stock": reward.stock})
    return reward


# ---- redeeming ----------------------------------------------------------------------------------------------
def _terms(reward: Reward, *, gift: bool) -> RewardTerms:
    return RewardTerms(
        active=reward.active, points_cost=reward.points_cost, valid_from=reward.valid_from,
        valid_until=reward.valid_until, tier_ids=() if gift else reward.tier_ids,
        segment_ids=() if gift else reward.segment_ids, stock=reward.stock,
        per_customer_limit=None if gift else reward.per_customer_limit,
    )


def redeem(
    session: Session, workspace_id: int, customer_id: int, reward_id: int, *, request_id: str | None,
    actor: str, details: dict[str, Any] | None = None,
) -> Redemption:
    """Spend the reward's points and issue its coupon or fulfilment. A repeat of ``request_id`` returns
    the first redemption. Raises ``RewardUnavailable`` (409, ``reason``) or ``InsufficientPoints`` (409)."""
    return _obtain(session, workspace_id, customer_id, reward_id, source_type="redemption",
                   source_id=request_id or uuid.uuid4().hex, actor=actor, gift=False, details=details)


def grant(
    session: Session, workspace_id: int, customer_id: int, reward_id: int, *, source_type: str, source_id: str,
    actor: str, details: dict[str, Any] | None = None,
) -> Redemption:
    """Give the reward without spending points (referral welcome, goodwill). Tier, segment and
    per-customer limits do not apply; activity, validity and stock do. Idempotent by source."""
    return _obtain(session, workspace_id, customer_id, reward_id, source_type=source_type, source_id=source_id,
                   actor=actor, gift=True, details=details)


def _obtain(
    session: Session, workspace_id: int, customer_id: int, reward_id: int, *, source_type: str, source_id: str,
    actor: str, gift: bool, details: dict[str, Any] | None,
) -> Redemption:
    redemptions = repo.RedemptionRepository(session, workspace_id)
    rewards = repo.RewardRepository(session, workspace_id)
    if not repo.customer_exists(session, workspace_id, customer_id):
        raise NotFound(f"customer {customer_id} not found")
    ledger.lock_account(session, workspace_id, customer_id)
    reward = rewards.get_or_404(reward_id, for_update=True)
    existing = redemptions.by_source(customer_id, source_type, source_id)
    if existing is not None:
        if existing.reward_id != reward_id:
            raise Conflict(f"{source_type} {source_id!r} already redeemed another reward", reason="source_reused")
        return existing
    now = utcnow()
    reason = unavailable_reason(
        _terms(reward, gift=gift), now=now,
        tier_id=None if gift or not reward.tier_ids else effective_tier_id(session, workspace_id, customer_id),
        in_segments=gift or in_any_segment(session, workspace_id, customer_id, reward.segment_ids),
        redeemed_by_customer=0 if gift else rewards.redeemed_counts(customer_id, [reward.id]).get(reward.id, 0),
    )
    if reason is not None:
        raise RewardUnavailable(f"{reward.name}: {reason.replace('_', ' ')}", reason=reason)
    points = 0 if gift else reward.points_cost
    redemption = redemptions.new(customer_id=customer_id, reward_id=reward.id, source_type=source_type,
                                 source_id=source_id, points=points, status="issued", actor=actor, redeemed_at=now)
    if points > 0:
        txn = ledger.spend(session, workspace_id, customer_id, points, source_type=SPEND_SOURCE,
                           source_id=str(redemption.id), reason=f"redeemed {reward.name}"[:500], actor=actor,
                           data={"reward_id": reward.id})
        redemption.ledger_transaction_id = txn.id
    if not rewards.take_stock(reward.id):  # the row is locked: only a bug gets here, but never go below 0
        raise RewardUnavailable(f"{reward.name}: out of stock", reason="out_of_stock")
    session.refresh(reward)
    coupon, fulfilment = _deliver(session, workspace_id, reward, redemption, details or {})
    record_event(session, workspace_id, "reward.redeemed", {
        "redemption_id": redemption.id, "reward_id": reward.id, "reward_name": reward.name, "kind": reward.kind,
        "customer_id": customer_id, "points": points, "source_type": source_type,
        "coupon_id": coupon.id if coupon else None, "coupon_code": coupon.code if coupon else None,
        "coupon_expires_at": coupon.expires_at.isoformat() if coupon and coupon.expires_at else None,
        "fulfilment_id": fulfilment.id if fulfilment else None,
    })
    audit(session, workspace_id=workspace_id, actor=actor, action="reward.redeemed", subject_type="customer",
          subject_id=customer_id, data={"redemption_id": redemption.id, "reward_id": reward.id, "points": points})
    return redemption


def _deliver(
    session: Session, workspace_id: int, reward: Reward, redemption: Redemption, details: dict[str, Any]
) -> tuple[Coupon | None, Fulfilment | None]:
    if reward.kind in COUPON_KINDS:
        return coupons.issue_for_reward(session, workspace_id, reward, redemption), None
    fulfilment = repo.FulfilmentRepository(session, workspace_id).new(
        redemption_id=redemption.id, customer_id=redemption.customer_id, reward_id=reward.id, kind=reward.kind,
        sku=reward.sku, status="pending", note="", details=details,
    )
    return None, fulfilment


def cancel_redemption(
    session: Session, workspace_id: int, redemption_id: int, *, reason: str, actor: str
) -> Redemption:
    """Undo a redemption whose coupon is unused or whose fulfilment is pending: void it, put the unit back
    in stock, refund the points."""
    redemptions = repo.RedemptionRepository(session, workspace_id)
    redemption = redemptions.get_or_404(redemption_id)
    ledger.lock_account(session, workspace_id, redemption.customer_id)
    session.refresh(redemption)
    if redemption.status != "issued":
        raise RedemptionNotCancellable(f"the redemption is {redemption.status}", reason=redemption.status)
    coupon = repo.CouponRepository(session, workspace_id).by_redemption(redemption.id)
    if coupon is not None and not repo.CouponRepository(session, workspace_id).set_status(coupon.id, "void"):
        raise RedemptionNotCancellable("the coupon has been used", reason="coupon_used")
    fulfilment = repo.FulfilmentRepository(session, workspace_id).by_redemption(redemption.id)
    if fulfilment is not None:
        if fulfilment.status == "fulfilled":
            raise RedemptionNotCancellable("the reward was fulfilled", reason="fulfilled")
        fulfilment.status = "cancelled"
    repo.RewardRepository(session, workspace_id).return_stock(redemption.reward_id)
    if redemption.points > 0:
        ledger.reverse(session, workspace_id, redemption.customer_id, source_type=SPEND_SOURCE,
                       source_id=str(redemption.id), reason=f"redemption cancelled: {reason}"[:500], actor=actor)
    redemption.status, redemption.cancelled_at = "cancelled", utcnow()
    session.flush()
    record_event(session, workspace_id, "reward.redemption_cancelled", {
        "redemption_id": redemption.id, "reward_id": redemption.reward_id, "customer_id": redemption.customer_id,
        "points_refunded": redemption.points, "reason": reason,
    })
    audit(session, workspace_id=workspace_id, actor=actor, action="reward.redemption_cancelled",
          subject_type="customer", subject_id=redemption.customer_id,
          data={"redemption_id": redemption.id, "reason": reason})
    return redemption


def update_fulfilment(
    session: Session, workspace_id: int, fulfilment_id: int, *, status: str, note: str, actor: str
) -> Fulfilment:
    fulfilment = repo.FulfilmentRepository(session, workspace_id).get_or_404(fulfilment_id)
    ledger.lock_account(session, workspace_id, fulfilment.customer_id)  # account first, then the fulfilment
    session.refresh(fulfilment, with_for_update=True)
    if fulfilment.status != "pending":
        raise Conflict(f"the fulfilment is already {fulfilment.status}", reason=fulfilment.status)
    if status == "cancelled":
        cancel_redemption(session, workspace_id, fulfilment.redemption_id, reason=note or "fulfilment cancelled",
                          actor=actor)
    else:
        fulfilment.status, fulfilment.fulfilled_at, fulfilment.fulfilled_by = "fulfilled", utcnow(), actor
    fulfilment.note = note
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action=f"fulfilment.{status}", subject_type="fulfilment",
          subject_id=fulfilment.id, data={"note": note})
    return fulfilment


# ---- offers -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Offer:
    reward: Reward
    affordable: bool
    reason: str | None  # None: the customer can redeem it now
    points_short: int


def offers(session: Session, workspace_id: int, customer_id: int, *, available_points: int,
           now: datetime | None = None) -> list[Offer]:
    """The active catalog from this customer's point of view, cheapest first."""
    now = now or utcnow()
    rewards = repo.RewardRepository(session, workspace_id)
    catalog = rewards.offered(now)
    counts = rewards.redeemed_counts(customer_id, [r.id for r in catalog])
    tier_id = effective_tier_id(session, workspace_id, customer_id)
    out = []
    for reward in catalog:
        reason = unavailable_reason(
            _terms(reward, gift=False), now=now, tier_id=tier_id,
            in_segments=in_any_segment(session, workspace_id, customer_id, reward.segment_ids),
            redeemed_by_customer=counts.get(reward.id, 0), available_points=available_points,
        )
        short = max(0, reward.points_cost - available_points)
        out.append(Offer(reward, short == 0, reason, short))
    return out
