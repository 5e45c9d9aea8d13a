"""Referral codes, attribution with fraud checks, staff review, and the rewards on both sides.

Lock order: both customers' point accounts (ascending id), then the referral row. The referrer's
account lock also serialises the velocity count of their referrals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound, field_error
from patronage.kit.jobs import enqueue, record_event
from patronage.ledger import service as ledger
from patronage.ledger.program import load_program
from patronage.referrals import repository as repo
from patronage.referrals.fraud import assess
from patronage.referrals.models import Referral, ReferralCode, ReferralProgram
from patronage.referrals.schemas import ReferralProgramIn
from patronage.rewards import service as rewards
from patronage.rewards.errors import RewardUnavailable
from patronage.rewards.rules import generate_code, normalise_code

REWARD_TASK = "referrals.reward_referrer"
CODE_LENGTH = 8
REFERRER_SOURCE = "referral"
WELCOME_SOURCE = "referral_welcome"


# ---- program ----------------------------------------------------------------------------------------------
def program(session: Session, workspace_id: int) -> ReferralProgramIn:
    row = repo.ProgramRepository(session, workspace_id).current()
    if row is None:
        return ReferralProgramIn()
    return ReferralProgramIn.model_validate({f: getattr(row, f) for f in ReferralProgramIn.model_fields})


def return_window_days(session: Session, workspace_id: int) -> int:
    return load_program(session, workspace_id).return_window_days


def update_program(session: Session, workspace_id: int, data: ReferralProgramIn, *, actor: str) -> ReferralProgram:
    for field in ("welcome_reward_id", "referrer_reward_id"):
        reward_id = getattr(data, field)
        if reward_id is not None:
            try:
                rewards.get_reward(session, workspace_id, reward_id)
            except NotFound:
                raise field_error(field, f"reward {reward_id} does not exist") from None
    programs = repo.ProgramRepository(session, workspace_id)
    row = programs.current()
    values = data.model_dump()
    if row is None:
        row = programs.new(**values)
    else:
        for field, value in values.items():
            setattr(row, field, value)
        session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="referrals.program_updated",
          subject_type="referral_program", subject_id=row.id, data=data.model_dump(mode="json"))
    return row


# ---- codes ------------------------------------------------------------------------------------------------
def referral_link(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/r/{code}"


def code_of(session: Session, workspace_id: int, customer_id: int) -> ReferralCode | None:
    return repo.CodeRepository(session, workspace_id).for_customer(customer_id)


def ensure_code(
    session: Session, workspace_id: int, customer_id: int, *, ip: str | None = None, device_id: str | None = None
) -> ReferralCode:
    """The customer's referral code, created on first use. Records the device/IP they share it from."""
    ledger.lock_account(session, workspace_id, customer_id)  # serialises creation; 404 for unknown customers
    codes = repo.CodeRepository(session, workspace_id)
    row = codes.for_customer(customer_id)
    if row is None:
        code = generate_code(CODE_LENGTH)
        while codes.code_taken(code):
            code = generate_code(CODE_LENGTH)
        row = codes.new(customer_id=customer_id, code=code, signals={})
    seen = {"ips": ip, "devices": device_id}
    signals = dict(row.signals or {})
    for key, value in seen.items():
        if value and value not in signals.get(key, []):
            signals[key] = [*signals.get(key, []), value][-20:]
    if signals != row.signals:
        row.signals = signals
        session.flush()
    return row


def record_invites(session: Session, workspace_id: int, customer_id: int, count: int) -> ReferralCode:
    row = ensure_code(session, workspace_id, customer_id)
    repo.CodeRepository(session, workspace_id).bump(row.id, invites_sent=count)
    session.refresh(row)
    return row


def record_click(session: Session, workspace_id: int, code: str) -> ReferralCode:
    codes = repo.CodeRepository(session, workspace_id)
    row = codes.by_code(normalise_code(code))
    if row is None:
        raise NotFound(f"referral code {code!r} not found")
    codes.bump(row.id, clicks=1)
    session.refresh(row)
    return row


# ---- attribution ------------------------------------------------------------------------------------------
def _lock_pair(session: Session, workspace_id: int, *customer_ids: int) -> None:
    for customer_id in sorted(set(customer_ids)):
        ledger.lock_account(session, workspace_id, customer_id)


def _event(session: Session, workspace_id: int, kind: str, r: Referral, **extra: Any) -> None:
    record_event(session, workspace_id, f"referral.{kind}", {
        "referral_id": r.id, "referrer_id": r.referrer_id, "referred_id": r.referred_id, "status": r.status,
        **extra,
    })


def attribute(
    session: Session, workspace_id: int, *, code: str, referred_id: int, signals: dict[str, Any], actor: str
) -> tuple[Referral, bool]:
    """The referred customer signed up with ``code``. Returns (referral, created). Suspicious referrals
    are created ``held`` with their reasons; a repeat with the same code returns the first one."""
    settings = program(session, workspace_id)
    if not settings.active:
        raise Conflict("the referral program is not active", reason="program_inactive")
    code_row = repo.CodeRepository(session, workspace_id).by_code(normalise_code(code))
    if code_row is None:
        raise field_error("code", f"referral code {code!r} does not exist")
    referrer_id = repo.survivor_of(session, workspace_id, code_row.customer_id)
    if referrer_id == referred_id:
        raise field_error("referred_customer_id", "a customer cannot refer themself")
    if repo.customer(session, workspace_id, referred_id) is None:
        raise field_error("referred_customer_id", f"customer {referred_id} does not exist")
    _lock_pair(session, workspace_id, referrer_id, referred_id)
    referrals = repo.ReferralRepository(session, workspace_id)
    existing = referrals.for_referred(referred_id)
    if existing is not None:
        if existing.referrer_id == referrer_id:
            return existing, False
        raise Conflict("this customer was already referred by someone else", reason="already_referred")
    now = utcnow()
    clean = {k: v for k, v in signals.items() if v}
    verdict = assess(
        referrer_id=referrer_id, referred_id=referred_id,
        referrer=repo.signals_of(session, workspace_id, referrer_id),
        referred=repo.signals_of(session, workspace_id, referred_id, extra=clean),
        last_day=referrals.made_since(referrer_id, now - timedelta(days=1)),
        last_week=referrals.made_since(referrer_id, now - timedelta(days=7)),
        max_per_day=settings.max_per_day, max_per_week=settings.max_per_week,
        referred_had_orders=repo.had_orders_before(session, workspace_id, referred_id, now),
        hold_existing=settings.hold_existing_customers,
    )
    referral = referrals.new(
        referrer_id=referrer_id, referred_id=referred_id, code=code_row.code,
        status="held" if verdict.hold else "pending", hold_reasons=list(verdict.reasons), signals=clean,
        signed_up_at=now,
    )
    audit(session, workspace_id=workspace_id, actor=actor, action="referral.created", subject_type="referral",
          subject_id=referral.id, data={"status": referral.status, "reasons": list(verdict.reasons)})
    _event(session, workspace_id, "held" if verdict.hold else "created", referral, reasons=list(verdict.reasons))
    if not verdict.hold and settings.welcome_trigger == "signup":
        _welcome(session, workspace_id, settings, referral, actor=actor)
    return referral, True


def _welcome(session: Session, workspace_id: int, settings: ReferralProgramIn, r: Referral, *, actor: str) -> None:
    if r.welcome_granted_at is not None:
        return
    if settings.welcome_points > 0:
        ledger.earn(session, workspace_id, r.referred_id, settings.welcome_points, source_type=WELCOME_SOURCE,
                    source_id=str(r.id), reason="welcome: referred by a friend", actor=actor)
    if settings.welcome_reward_id is not None:
        _grant(session, workspace_id, r.referred_id, settings.welcome_reward_id, source=WELCOME_SOURCE, r=r,
               actor=actor)
    r.welcome_granted_at = utcnow()
    session.flush()


def _grant(
    session: Session, workspace_id: int, customer_id: int, reward_id: int, *, source: str, r: Referral, actor: str
) -> None:
    """A reward that cannot be given (out of stock, inactive) is noted, not retried forever."""
    try:
        with session.begin_nested():
            rewards.grant(session, workspace_id, customer_id, reward_id, source_type=source, source_id=str(r.id),
                          actor=actor)
    except RewardUnavailable as exc:
        audit(session, workspace_id=workspace_id, actor=actor, action="referral.reward_unavailable",
              subject_type="referral", subject_id=r.id, data={"reward_id": reward_id, **exc.extra})


# ---- the qualifying order -------------------------------------------------------------------------------------
def on_order(
    session: Session, workspace_id: int, *, order_id: int, customer_id: int, total: Decimal, placed_at: datetime
) -> Referral | None:
    """The referred customer's first qualifying order converts the referral and schedules the referrer's
    reward for when the return window has passed."""
    referrals = repo.ReferralRepository(session, workspace_id)
    found = referrals.for_referred(customer_id)
    if found is None or found.order_id is not None or found.status not in ("pending", "held"):
        return None
    settings = program(session, workspace_id)
    if settings.min_order_amount is not None and total < settings.min_order_amount:
        return None
    _lock_pair(session, workspace_id, found.referrer_id, found.referred_id)
    r = referrals.for_referred(customer_id, for_update=True)
    if r is None or r.order_id is not None:
        return None
    r.order_id, r.order_placed_at = order_id, placed_at
    if r.status == "pending":
        _convert(session, workspace_id, settings, r, actor="system")
    session.flush()
    return r


def on_orders_in_turn(
    session: Session, workspace_id: int, orders: Sequence[tuple[int, int, Decimal, datetime]]
) -> None:
    """``on_order`` for each (order id, customer id, total, placed_at), in order, in one transaction (a
    batch of jobs). One look-up finds the customers whose referral waits for an order; only their orders
    go through ``on_order`` (for the others it finds nothing). The batch holds its locks to the end, so
    when several referrals may convert, all their pairs' accounts are locked first, in ascending order,
    the ones ``on_order`` would lock and no other."""
    waiting = {r.referred_id: r for r in repo.ReferralRepository(session, workspace_id).waiting_for_order(
        [customer_id for _, customer_id, _, _ in orders])}
    mine = [o for o in orders if o[1] in waiting]
    if not mine:
        return
    minimum = program(session, workspace_id).min_order_amount
    converting = {cid for _, cid, total, _ in mine if minimum is None or total >= minimum}
    if len(converting) > 1:
        _lock_pair(session, workspace_id, *converting, *(waiting[cid].referrer_id for cid in converting))
    for order_id, customer_id, total, placed_at in mine:
        on_order(session, workspace_id, order_id=order_id, customer_id=customer_id, total=total, placed_at=placed_at)


def on_orders(session: Session, workspace_id: int, orders: Sequence[Any]) -> int:
    """``on_order`` for a bulk import's orders (rows with id, customer_id, total, placed_at, status): one
    look-up finds the referred customers among them; each gets its earliest qualifying order of the
    batch, in (placed_at, id) order. Returns how many referrals took an order."""
    waiting = {r.referred_id for r in repo.ReferralRepository(session, workspace_id).waiting_for_order(
        [o.customer_id for o in orders])}
    taken = 0
    for o in sorted((o for o in orders if o.customer_id in waiting and o.status != "cancelled"),
                    key=lambda o: (o.placed_at, o.id)):
        if on_order(session, workspace_id, order_id=o.id, customer_id=o.customer_id, total=Decimal(o.total),
                    placed_at=o.placed_at) is not None:
            taken += 1
    return taken


def _convert(session: Session, workspace_id: int, settings: ReferralProgramIn, r: Referral, *, actor: str) -> None:
    assert r.order_placed_at is not None
    now = utcnow()
    r.status, r.converted_at = "converted", now
    r.reward_due_at = max(now, r.order_placed_at + timedelta(days=return_window_days(session, workspace_id)))
    _welcome(session, workspace_id, settings, r, actor=actor)
    enqueue(session, REWARD_TASK, {"referral_id": r.id}, workspace_id=workspace_id, run_at=r.reward_due_at,
            unique_key=f"{REWARD_TASK}:{r.id}")
    _event(session, workspace_id, "converted", r, order_id=r.order_id, reward_due_at=r.reward_due_at.isoformat())


def _order_undone(session: Session, workspace_id: int, order_id: int) -> bool:
    """Cancelled, or returned in full."""
    order = repo.order(session, workspace_id, order_id)
    if order is None or order.status == "cancelled":
        return True
    return order.total > 0 and repo.returned_amount(session, workspace_id, order_id) >= order.total


def reward_referrer(session: Session, workspace_id: int, referral_id: int) -> bool:
    """The scheduled job: reward the referrer once the order has outlived its return window."""
    r = repo.ReferralRepository(session, workspace_id).get(referral_id)
    if r is None:
        return False
    _lock_pair(session, workspace_id, r.referrer_id, r.referred_id)
    session.refresh(r, with_for_update=True)
    if r.status != "converted" or r.order_id is None or r.reward_due_at is None:
        return False
    now = utcnow()
    if r.reward_due_at > now:  # approved late, or clock moved: run again when due
        enqueue(session, REWARD_TASK, {"referral_id": r.id}, workspace_id=workspace_id, run_at=r.reward_due_at,
                unique_key=f"{REWARD_TASK}:{r.id}")
        return False
    if _order_undone(session, workspace_id, r.order_id):
        _cancel(session, workspace_id, r, reason="order_returned")
        return False
    settings = program(session, workspace_id)
    if settings.referrer_points > 0:
        ledger.earn(session, workspace_id, r.referrer_id, settings.referrer_points, source_type=REFERRER_SOURCE,
                    source_id=str(r.id), reason=f"referred customer {r.referred_id}", actor="system")
    if settings.referrer_reward_id is not None:
        _grant(session, workspace_id, r.referrer_id, settings.referrer_reward_id, source=REFERRER_SOURCE, r=r,
               actor="system")
    r.status, r.referrer_rewarded_at = "rewarded", now
    session.flush()
    _event(session, workspace_id, "rewarded", r, points=settings.referrer_points)
    return True


def _cancel(session: Session, workspace_id: int, r: Referral, *, reason: str) -> None:
    r.status, r.cancelled_at, r.cancel_reason = "cancelled", utcnow(), reason
    session.flush()
    _event(session, workspace_id, "cancelled", r, reason=reason)


def on_order_undone(session: Session, workspace_id: int, order_id: int) -> Referral | None:
    """The referred order was cancelled or fully returned: a pending referrer reward is cancelled; one
    already given is reversed (points taken back, an unused reward coupon voided)."""
    found = repo.ReferralRepository(session, workspace_id).for_order(order_id)
    if found is None or found.status not in ("converted", "rewarded") or not _order_undone(session, workspace_id,
                                                                                            order_id):
        return None
    _lock_pair(session, workspace_id, found.referrer_id, found.referred_id)
    session.refresh(found, with_for_update=True)
    if found.status == "rewarded":
        ledger.reverse(session, workspace_id, found.referrer_id, source_type=REFERRER_SOURCE,
                       source_id=str(found.id), reason="referred order returned", actor="system")
        _take_back_reward(session, workspace_id, found)
    if found.status in ("converted", "rewarded"):
        _cancel(session, workspace_id, found, reason="order_returned")
    return found


def _take_back_reward(session: Session, workspace_id: int, r: Referral) -> None:
    from patronage.rewards.errors import RedemptionNotCancellable
    from patronage.rewards.repository import RedemptionRepository

    redemption = RedemptionRepository(session, workspace_id).by_source(r.referrer_id, REFERRER_SOURCE, str(r.id))
    if redemption is None or redemption.status != "issued":
        return
    try:
        with session.begin_nested():
            rewards.cancel_redemption(session, workspace_id, redemption.id, reason="referred order returned",
                                      actor="system")
    except RedemptionNotCancellable:
        pass  # the coupon was used already: nothing left to take back


# ---- staff review ---------------------------------------------------------------------------------------------
def _decide(session: Session, workspace_id: int, referral_id: int, actor: str, note: str) -> Referral:
    r = repo.ReferralRepository(session, workspace_id).get_or_404(referral_id)
    _lock_pair(session, workspace_id, r.referrer_id, r.referred_id)
    session.refresh(r, with_for_update=True)
    r.decided_by, r.decided_at, r.decision_note = actor, utcnow(), note or None
    return r


def approve(session: Session, workspace_id: int, referral_id: int, *, note: str, actor: str) -> Referral:
    r = _decide(session, workspace_id, referral_id, actor, note)
    if r.status != "held":
        raise Conflict(f"only held referrals can be approved; this one is {r.status}", reason=r.status)
    settings = program(session, workspace_id)
    r.status = "pending"
    if r.order_id is not None and _order_undone(session, workspace_id, r.order_id):
        _cancel(session, workspace_id, r, reason="order_returned")
    elif r.order_id is not None:
        _convert(session, workspace_id, settings, r, actor=actor)
    elif settings.welcome_trigger == "signup":
        _welcome(session, workspace_id, settings, r, actor=actor)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="referral.approved", subject_type="referral",
          subject_id=r.id, data={"note": note})
    _event(session, workspace_id, "approved", r)
    return r


def reject(session: Session, workspace_id: int, referral_id: int, *, note: str, actor: str) -> Referral:
    r = _decide(session, workspace_id, referral_id, actor, note)
    if r.status not in ("held", "pending"):
        raise Conflict(f"only held or pending referrals can be rejected; this one is {r.status}", reason=r.status)
    r.status = "rejected"
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="referral.rejected", subject_type="referral",
          subject_id=r.id, data={"note": note})
    _event(session, workspace_id, "rejected", r)
    return r


# ---- stats ------------------------------------------------------------------------------------------------------
def stats(session: Session, workspace_id: int, customer_id: int | None = None) -> dict[str, Any]:
    counts = repo.ReferralRepository(session, workspace_id).stats(customer_id)
    invited, clicks = repo.CodeRepository(session, workspace_id).totals(customer_id)
    signed_up = counts["signed_up"]
    rate = round(counts["converted"] / signed_up, 4) if signed_up else None
    return {"invited": invited, "clicks": clicks, **counts, "conversion_rate": rate}


def referred_by(session: Session, workspace_id: int, customer_id: int) -> int | None:
    r = repo.ReferralRepository(session, workspace_id).for_referred(customer_id)
    return r.referrer_id if r else None
