"""Tier qualification: credits from orders, points and returns; upgrades at once; reviews, grace and
downgrades at period end; manual overrides. Lock order: the customer's point account, then the membership.

Every change of a customer's effective tier appends a ``TierHistory`` row and records ``tier.changed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import NotFound, field_error
from patronage.kit.jobs import record_event
from patronage.ledger import service as ledger
from patronage.tiers import repository as repo
from patronage.tiers.models import TierHistory, TierMembership
from patronage.tiers.rules import (
    Ladder,
    current_window_start,
    downgrade_target,
    grace_end,
    keeps_tier,
    next_review,
    upgrade_to,
    window_start,
)
from patronage.tiers.service import ProgramSettings, program

Events = list[tuple[str, dict[str, Any]]]  # (type, payload) of domain events a batch records together


# ---- credits ---------------------------------------------------------------------------------------
def credit_order(
    session: Session, workspace_id: int, *, order_id: int, customer_id: int, total: Decimal, placed_at: datetime
) -> bool:
    """Count an order towards tiers (spend and order count). Idempotent per order; True when new."""
    return repo.CreditRepository(session, workspace_id).add_once(
        customer_id=customer_id, source_type="order", source_id=str(order_id), order_id=order_id,
        occurred_at=placed_at, spend=total, orders=1, points=0,
    )


def credit_orders(session: Session, workspace_id: int, orders: Sequence[Any]) -> set[int]:
    """``credit_order`` for a bulk import's orders (rows with id, customer_id, total, placed_at, status),
    set-based; cancelled ones never count. Idempotent per order. Returns the customers credited."""
    counted = [o for o in orders if o.status != "cancelled"]
    repo.CreditRepository(session, workspace_id).add_many_once([
        {"customer_id": o.customer_id, "source_type": "order", "source_id": str(o.id), "order_id": o.id,
         "occurred_at": o.placed_at, "spend": Decimal(o.total), "orders": 1, "points": 0}
        for o in counted
    ])
    return {o.customer_id for o in counted}


def credit_points(
    session: Session, workspace_id: int, *, customer_id: int, points: int, source_id: str,
    occurred_at: datetime, order_id: int | None = None,
) -> bool:
    """Count earned points towards tiers. Idempotent per ledger transaction; True when new."""
    return repo.CreditRepository(session, workspace_id).add_once(
        customer_id=customer_id, source_type="points", source_id=source_id, order_id=order_id,
        occurred_at=occurred_at, spend=Decimal(0), orders=0, points=points,
    )


def credit_return(
    session: Session, workspace_id: int, *, order_id: int, return_id: int, amount: Decimal
) -> bool:
    """Take back the tier credit of a returned order, in the period the order counted in.

    Spend drops by the returned amount (capped at what the order still counts for); the order stops
    counting once fully returned.
    """
    return _take_back(session, workspace_id, order_id, str(return_id), Decimal(amount))


def cancel_order_credit(session: Session, workspace_id: int, *, order_id: int) -> bool:
    """A cancelled order stops counting towards tiers, like a full return."""
    return _take_back(session, workspace_id, order_id, f"cancel:{order_id}", None)


def _take_back(session: Session, workspace_id: int, order_id: int, source_id: str, amount: Decimal | None) -> bool:
    """Points are not touched here: the ledger's reversal of the order's points arrives as
    ``points.reversed`` and is credited from there (see tasks.py)."""
    credits = repo.CreditRepository(session, workspace_id)
    order_rows = credits.for_order(order_id, "order")
    if not order_rows:
        return False  # the order never counted (recorded before tiers existed, or unknown)
    order = order_rows[0]
    ledger.lock_account(session, workspace_id, order.customer_id)  # serialises returns of one customer
    returned = credits.for_order(order_id, "return")
    counted = order.spend + sum((r.spend for r in returned), Decimal(0))
    still_counts = order.orders + sum(r.orders for r in returned) > 0
    take = counted if amount is None else max(Decimal(0), min(amount, counted))
    fully = take >= counted
    if take <= 0 and not (fully and still_counts):
        return False
    return credits.add_once(
        customer_id=order.customer_id, source_type="return", source_id=source_id, order_id=order_id,
        occurred_at=order.occurred_at, spend=-take, orders=-1 if fully and still_counts else 0, points=0,
    )


# ---- evaluation -----------------------------------------------------------------------------------------
def _current_value(session: Session, workspace_id: int, customer_id: int, s: ProgramSettings, now: datetime) -> Decimal:
    start = current_window_start(s.window, now, s.tz)
    return repo.CreditRepository(session, workspace_id).metric(customer_id, s.metric, start, None)


def _period_value(
    session: Session, workspace_id: int, customer_id: int, s: ProgramSettings, end: datetime
) -> Decimal:
    start = window_start(s.window, end, s.tz)
    return repo.CreditRepository(session, workspace_id).metric(customer_id, s.metric, start, end)


def _locked_membership(session: Session, workspace_id: int, customer_id: int) -> TierMembership | None:
    ledger.lock_account(session, workspace_id, customer_id)
    return repo.MembershipRepository(session, workspace_id).for_customer(customer_id, for_update=True)


def _new_membership(
    session: Session, workspace_id: int, customer_id: int, ladder: Ladder, *, flush: bool = True
) -> TierMembership:
    """The customer's first membership, on the base tier. Unflushed (a batch), it is inserted later with
    the values it ends up with: one INSERT instead of an INSERT and an UPDATE."""
    base = ladder.base()
    base_id = base.id if base else None
    now = utcnow()
    m = TierMembership(workspace_id=workspace_id, customer_id=customer_id, tier_id=base_id,
                       earned_tier_id=base_id, entered_at=now, earned_at=now)
    if flush:
        return repo.MembershipRepository(session, workspace_id).add(m)
    session.add(m)
    return m


def _override_active(m: TierMembership, now: datetime) -> bool:
    return m.override_until is not None and m.override_until > now


def _settle(
    session: Session, workspace_id: int, m: TierMembership, ladder: Ladder, *, reason: str, actor: str,
    now: datetime, data: dict[str, Any] | None = None, events: Events | None = None,
) -> bool:
    """Make ``tier_id`` the override (while active) or the earned tier; log and announce a change.

    With ``events`` (a batch), the announcement is appended there and nothing is flushed: the caller
    flushes once and records the batch's events together."""
    target = m.override_tier_id if _override_active(m, now) else m.earned_tier_id
    if target == m.tier_id:
        if events is None:
            session.flush()
        return False
    before = m.tier_id
    m.tier_id, m.entered_at = target, now
    session.add(TierHistory(workspace_id=workspace_id, customer_id=m.customer_id, from_tier_id=before,
                            to_tier_id=target, reason=reason, at=now, actor=actor, data=data or {}))
    old, new = ladder.get(before), ladder.get(target)
    payload = {
        "customer_id": m.customer_id,
        "from_tier_id": before,
        "to_tier_id": target,
        "from_tier": old.name if old else None,
        "to_tier": new.name if new else None,
        "direction": "up" if ladder.rank(target) > ladder.rank(before) else "down",
        "reason": reason,
    }
    if events is not None:
        events.append(("tier.changed", payload))
        return True
    session.flush()
    record_event(session, workspace_id, "tier.changed", payload)
    return True


def evaluate(session: Session, workspace_id: int, customer_id: int, *, actor: str = "system") -> bool:
    """Upgrade at once when the current window's metric reaches a higher tier; leave grace when it
    keeps the tier again. Returns whether the effective tier changed."""
    ladder = repo.TierRepository(session, workspace_id).ladder()
    if not len(ladder):
        return False
    e = Evaluation(ladder, program(session, workspace_id), utcnow())
    m = _locked_membership(session, workspace_id, customer_id)
    value = _current_value(session, workspace_id, customer_id, e.settings, e.now)
    changed, _ = apply_evaluation(session, workspace_id, customer_id, m, value=value, e=e, actor=actor)
    return changed


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation reads besides the customer's own rows (a batch reads it once)."""

    ladder: Ladder
    settings: ProgramSettings
    now: datetime


def apply_evaluation(
    session: Session, workspace_id: int, customer_id: int, m: TierMembership | None, *, value: Decimal,
    e: Evaluation, actor: str, events: Events | None = None,
) -> tuple[bool, TierMembership | None]:
    """``evaluate``'s decision for a customer whose account is locked, given their membership (locked, or
    None) and the current window's metric. Returns whether the effective tier changed, and the membership
    (created when the customer first moves up). With ``events``, see ``_settle``."""
    ladder, s, now = e.ladder, e.settings, e.now
    base = ladder.base()
    earned = m.earned_tier_id if m is not None else (base.id if base else None)
    target = upgrade_to(ladder, earned, value)
    if target is None:
        if m is not None and m.downgrade_at is not None and keeps_tier(ladder, m.earned_tier_id, value):
            m.downgrade_at = None
            m.earned_at = now
            m.review_at = next_review(s.window, now, s.tz, anchor=now)
            if events is None:
                session.flush()
        return False, m
    if m is None:
        m = _new_membership(session, workspace_id, customer_id, ladder, flush=events is None)
    m.earned_tier_id, m.earned_at, m.downgrade_at = target.id, now, None
    m.review_at = next_review(s.window, now, s.tz, anchor=now)
    if _override_active(m, now) and ladder.rank(target.id) > ladder.rank(m.override_tier_id):
        # Qualifying above an override ends it: the customer earned better than they were given.
        m.override_tier_id, m.override_until, m.override_reason = None, None, None
    changed = _settle(session, workspace_id, m, ladder, reason="qualified", actor=actor, now=now,
                      data={"metric": s.metric.value, "value": str(value)}, events=events)
    return changed, m


def review_customer(session: Session, workspace_id: int, customer_id: int, *, now: datetime | None = None) -> bool:
    """Apply whatever is due for one customer: an override's end, a period review, a grace period's end."""
    now = now or utcnow()
    tiers = repo.TierRepository(session, workspace_id)
    ladder = tiers.ladder()
    s = program(session, workspace_id)
    m = _locked_membership(session, workspace_id, customer_id)
    if m is None:
        return False
    changed = False
    if m.override_until is not None and m.override_until <= now:
        m.override_tier_id, m.override_until, m.override_reason = None, None, None
        changed |= _settle(session, workspace_id, m, ladder, reason="override_ended", actor="system", now=now)
    if m.review_at is not None and m.review_at <= now and m.downgrade_at is None:
        value = _period_value(session, workspace_id, customer_id, s, m.review_at)
        if keeps_tier(ladder, m.earned_tier_id, value):
            m.earned_at = m.review_at
            m.review_at = next_review(s.window, m.review_at, s.tz, anchor=m.review_at)
        else:
            m.downgrade_at = grace_end(m.review_at, s.grace_days)
        session.flush()
    if m.downgrade_at is not None and m.downgrade_at <= now and m.review_at is not None:
        at_review = ladder.qualified(_period_value(session, workspace_id, customer_id, s, m.review_at))
        value_now = _current_value(session, workspace_id, customer_id, s, now)
        qualified_now = ladder.qualified(value_now)
        target = downgrade_target(
            ladder, m.earned_tier_id, at_review.id if at_review else None,
            qualified_now.id if qualified_now else None, s.downgrade_policy,
        )
        m.earned_tier_id, m.earned_at, m.downgrade_at = target, now, None
        base = ladder.base()
        on_base = target is None or (base is not None and target == base.id)
        m.review_at = None if on_base else next_review(s.window, now, s.tz, anchor=now)
        changed |= _settle(session, workspace_id, m, ladder, reason="downgrade", actor="system", now=now,
                           data={"metric": s.metric.value, "value": str(value_now),
                                 "policy": s.downgrade_policy.value})
    return changed


def run_reviews(session: Session, workspace_id: int, *, now: datetime | None = None, batch: int = 500) -> int:
    """Every due review, grace end and override end of a workspace (up to ``batch`` customers);
    returns how many customers were processed."""
    now = now or utcnow()
    due = repo.MembershipRepository(session, workspace_id).due(now, limit=batch)
    for customer_id in due:
        review_customer(session, workspace_id, customer_id, now=now)
    return len(due)


# ---- overrides ------------------------------------------------------------------------------------------
def override(
    session: Session, workspace_id: int, customer_id: int, *, tier_id: int | None, until: datetime,
    reason: str, actor: str,
) -> TierMembership:
    """Hold ``tier_id`` until ``until`` whatever the metric says, then fall back to the earned tier."""
    now = utcnow()
    if until <= now:
        raise field_error("until", "must be in the future")
    if not repo.customer_exists(session, workspace_id, customer_id):
        raise NotFound(f"customer {customer_id} not found")
    tiers = repo.TierRepository(session, workspace_id)
    if tier_id is not None and tiers.get(tier_id) is None:
        raise field_error("tier_id", f"tier {tier_id} does not exist")
    ladder = tiers.ladder()
    m = _locked_membership(session, workspace_id, customer_id)
    if m is None:
        m = _new_membership(session, workspace_id, customer_id, ladder)
    m.override_tier_id, m.override_until, m.override_reason = tier_id, until, reason
    _settle(session, workspace_id, m, ladder, reason="override", actor=actor, now=now,
            data={"until": until.isoformat(), "note": reason})
    audit(session, workspace_id=workspace_id, actor=actor, action="tier.overridden", subject_type="customer",
          subject_id=customer_id, data={"tier_id": tier_id, "until": until.isoformat(), "reason": reason})
    return m


def end_override(session: Session, workspace_id: int, customer_id: int, *, actor: str) -> TierMembership:
    ladder = repo.TierRepository(session, workspace_id).ladder()
    m = _locked_membership(session, workspace_id, customer_id)
    if m is None or m.override_until is None:
        raise NotFound(f"customer {customer_id} has no tier override")
    m.override_tier_id, m.override_until, m.override_reason = None, None, None
    _settle(session, workspace_id, m, ladder, reason="override_ended", actor=actor, now=utcnow())
    audit(session, workspace_id=workspace_id, actor=actor, action="tier.override_ended", subject_type="customer",
          subject_id=customer_id)
    return m
