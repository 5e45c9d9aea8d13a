"""The ledger's public contract. Every mutating function locks the customer's account first, is
idempotent by its source, and never commits (the request or job boundary does).

    earn(session, ws, customer_id, points, *, source_type, source_id, reason, actor,
         earned_at=None, pending_until=None, expires_at=None, data=None) -> LedgerTransaction
    spend(session, ws, customer_id, points, *, source_type, source_id, reason, actor, data=None)
    reverse(session, ws, customer_id, *, source_type, source_id, points=None, reason, actor,
            reversal_id=None, data=None) -> LedgerTransaction | None
    adjust(session, ws, customer_id, points, *, reason, actor, source_id) -> LedgerTransaction
    balance(session, ws, customer_id, *, expiring_within_days=30) -> Balance
    lock_account(session, ws, customer_id) -> PointAccount
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.errors import NotFound, field_error
from patronage.ledger.errors import InsufficientPoints, SourceConflict
from patronage.ledger.expiry_rules import inactivity_deadline, lot_expiry
from patronage.ledger.models import ADJUSTED, LedgerTransaction, PointAccount, PointLot, TxKind
from patronage.ledger.posting import plan_adjust_credit, plan_debit, plan_earn, plan_reverse
from patronage.ledger.repository import LedgerRepository
from patronage.ledger.schemas import Balance
from patronage.ledger.writer import NewLot, buckets, earn_lot, post, program_for, settle, spread_reduction

__all__ = [
    "Balance", "InsufficientPoints", "LedgerTransaction", "PointAccount",
    "adjust", "balance", "earn", "find_earning", "lock_account", "reverse", "spend",
]

MANUAL = "manual"
_LOCKS = "ledger.locks"
_MISSES = "ledger.misses"


def lock_account(session: Session, workspace_id: int, customer_id: int) -> PointAccount:
    """The customer's account, locked for this transaction (created on first use).

    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite: write transactions begin IMMEDIATE and hold the
    database's single writer lock already. Lock several accounts in ascending customer id order.
    """
    locks = _held_locks(session)
    held = locks.get((workspace_id, customer_id))
    if held is not None:  # locked earlier in this very transaction: no second round trip
        return held
    repo = LedgerRepository(session, workspace_id)
    account = repo.account(customer_id, for_update=True)
    if account is None:
        if not repo.customer_exists(customer_id):
            raise NotFound(f"customer {customer_id} not found")
        repo.create_account(customer_id)
        account = repo.account(customer_id, for_update=True)
        assert account is not None
    locks[(workspace_id, customer_id)] = account
    return account


def find_earning(
    session: Session, workspace_id: int, customer_id: int, source_type: str, source_id: str
) -> LedgerTransaction | None:
    """The earn transaction of a source, if any. Called with the account locked, a miss is remembered for
    the next call only (nobody else can earn for this customer meanwhile), so ``earn`` right after does not
    ask the database again."""
    misses = session.info.setdefault(_MISSES, {})
    locks = _held_locks(session)
    key = (workspace_id, customer_id, source_type, source_id)
    if misses.pop(key, None) is locks and (workspace_id, customer_id) in locks:
        return None
    found = LedgerRepository(session, workspace_id).find_transaction(customer_id, TxKind.EARN, source_type, source_id)
    if found is None and (workspace_id, customer_id) in locks:
        misses[key] = locks
    return found


def _held_locks(session: Session) -> dict[tuple[int, int], PointAccount]:
    """Accounts the session's innermost transaction (or savepoint) locked; a new one starts empty, so a
    lock given back by a rolled-back savepoint is never trusted."""
    if session.get_transaction() is None:
        session.connection()  # begin now (the lock's query would anyway), so the marker is the real transaction
    transaction = session.get_nested_transaction() or session.get_transaction()
    marker, locks = session.info.get(_LOCKS, (None, None))
    if locks is None or marker is not transaction:
        locks = {}
        session.info[_LOCKS] = (transaction, locks)
    return locks  # type: ignore[no-any-return]


def _positive(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise field_error("points", "must be a positive whole number")


def earn(
    session: Session,
    workspace_id: int,
    customer_id: int,
    points: int,
    *,
    source_type: str,
    source_id: str,
    reason: str,
    actor: str,
    earned_at: datetime | None = None,
    pending_until: datetime | None = None,
    expires_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Credit points. Pending until ``pending_until`` when that is in the future. A repeat with the same
    (customer, source) returns the first transaction unchanged."""
    _positive(points)
    account = lock_account(session, workspace_id, customer_id)
    existing = find_earning(session, workspace_id, customer_id, source_type, source_id)
    if existing is not None:
        return existing
    program = program_for(session, workspace_id)
    now = utcnow()
    earned_at = earned_at or now
    pending = pending_until is not None and pending_until > now
    if expires_at is None:
        expires_at = lot_expiry(program.expiry, earned_at, program.timezone)
    if program.expiry.kind == "after_inactivity":
        deadline = inactivity_deadline(program.expiry, account.last_activity_at, program.timezone)
        if deadline is not None and deadline <= now:
            settle(session, account, program, now=now)
    plan = plan_earn(buckets(account), points, pending=pending)
    lot = earn_lot(points, plan, earned_at=earned_at, pending_until=pending_until, now=now, expires_at=expires_at)
    txn = post(session, account, plan, kind=TxKind.EARN, source_type=source_type, source_id=source_id,
               reason=reason, actor=actor, occurred_at=earned_at,
               data={**(data or {}), **({"repaid": plan.repaid} if plan.repaid else {})},
               new_lots=[lot], counters={"lifetime_earned": points}, activity=True)
    session.info.get(_MISSES, {}).pop((workspace_id, customer_id, source_type, source_id), None)
    return txn


def spend(
    session: Session,
    workspace_id: int,
    customer_id: int,
    points: int,
    *,
    source_type: str,
    source_id: str,
    reason: str,
    actor: str,
    data: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Debit available points, soonest-expiring lots first. ``InsufficientPoints`` (409) unless the
    workspace allows a negative balance."""
    _positive(points)
    account = lock_account(session, workspace_id, customer_id)
    repo = LedgerRepository(session, workspace_id)
    existing = repo.find_transaction(customer_id, TxKind.SPEND, source_type, source_id)
    if existing is not None:
        if existing.points != -points:
            raise SourceConflict(f"{source_type} {source_id} already spent {-existing.points} points")
        return existing
    program = program_for(session, workspace_id)
    now = utcnow()
    lots = settle(session, account, program, now=now)
    plan = plan_debit(buckets(account), lots, points, allow_negative=program.allow_negative_balance)
    return post(session, account, plan, kind=TxKind.SPEND, source_type=source_type, source_id=source_id,
                reason=reason, actor=actor, occurred_at=now, data=data,
                counters={"lifetime_spent": points}, activity=True)


def reverse(
    session: Session,
    workspace_id: int,
    customer_id: int,
    *,
    source_type: str,
    source_id: str,
    points: int | None = None,
    reason: str,
    actor: str,
    reversal_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> LedgerTransaction | None:
    """Undo (all or ``points`` of) what a source earned — or gave back what it spent (a refund).

    Idempotent per (source, reversal id): pass ``reversal_id`` (e.g. the return's id) for partial
    reversals; without it the id is "all", or derived from ``points``. Never reverses more than the
    source earned in total. None when the source has no transaction or nothing is left to reverse.
    Points already spent follow the workspace's ``reversal_shortfall`` policy.
    """
    if points is not None:
        _positive(points)
    account = lock_account(session, workspace_id, customer_id)
    repo = LedgerRepository(session, workspace_id)
    originals = repo.transactions_of_source(customer_id, (TxKind.EARN, TxKind.SPEND), source_type, source_id)
    if not originals:
        return None
    original = originals[0]
    rid = reversal_id or ("all" if points is None else f"points:{points}")
    rev_source = f"{source_id}#{rid}"
    existing = repo.find_transaction(customer_id, TxKind.REVERSE, source_type, rev_source[:200])
    if existing is not None:
        return existing
    program = program_for(session, workspace_id)
    now = utcnow()
    lots = settle(session, account, program, now=now)
    done = sum(int(t.data.get("reversed", 0)) for t in repo.reversals_of(original.id))
    if original.kind == TxKind.EARN:  # points that expired are gone already: nothing to take back
        done += repo.expired_from([lot.id for lot in repo.lots_of_transaction(original.id)])
    left = abs(original.points) - done
    amount = left if points is None else min(points, left)
    if amount <= 0:
        return None
    extra = {**(data or {}), "reversal_id": rid, "reversed": amount}
    common: dict[str, Any] = {"kind": TxKind.REVERSE, "source_type": source_type, "source_id": rev_source,
                              "reason": reason, "actor": actor, "occurred_at": now, "reverses_id": original.id}
    if original.kind == TxKind.SPEND:
        return _refund(session, account, original, amount, done, now=now, data=extra, **common)
    own = [lot for lot in repo.lots_of_transaction(original.id) if lot.remaining > 0]
    plan = plan_reverse(buckets(account), own, lots, amount, policy=program.reversal_shortfall)  # type: ignore[arg-type]
    extra.update(written_off=plan.written_off,
                 clawed_back=-plan.deltas.get("clawback", 0))
    return post(session, account, plan, data=extra, **common)


def _refund(
    session: Session, account: PointAccount, original: LedgerTransaction, amount: int, done: int, *,
    now: datetime, data: dict[str, Any], **common: Any,
) -> LedgerTransaction:
    """Give back spent points into new lots that keep the expiry dates of the lots they came from."""
    repo = LedgerRepository(session, account.workspace_id)
    program = program_for(session, account.workspace_id)
    pieces: list[tuple[int, datetime | None, datetime]] = []
    skip, want = done, amount
    for alloc, lot in repo.allocations_of(original.id):
        part = max(0, alloc.amount - skip)
        skip = max(0, skip - alloc.amount)
        part = min(part, want)
        if part:
            pieces.append((part, lot.expires_at, lot.earned_at))
            want -= part
    if want:  # spent on credit (negative balance): no lot to mirror
        pieces.append((want, lot_expiry(program.expiry, now, program.timezone), now))
    plan = plan_earn(buckets(account), amount, pending=False, source="system:redeemed")
    remainders = spread_reduction([p for p, _, _ in pieces], amount - plan.lot_remaining)
    lots = [NewLot(p, r, earned, now, now, exp) for (p, exp, earned), r in zip(pieces, remainders, strict=True)]
    return post(session, account, plan, data=data, new_lots=lots, counters={"lifetime_spent": -amount}, **common)


def adjust(
    session: Session,
    workspace_id: int,
    customer_id: int,
    points: int,
    *,
    reason: str,
    actor: str,
    source_id: str,
) -> LedgerTransaction:
    """A manual correction by staff (``actor``) with a ``reason``; positive credits, negative debits.

    Idempotent by ``source_id``: a repeat returns the first transaction; other points -> 409."""
    if not isinstance(points, int) or isinstance(points, bool) or points == 0:
        raise field_error("points", "must be a non-zero whole number")
    if not reason or not reason.strip():
        raise field_error("reason", "say why the points are adjusted")
    account = lock_account(session, workspace_id, customer_id)
    existing = LedgerRepository(session, workspace_id).find_transaction(customer_id, TxKind.ADJUST, MANUAL, source_id)
    if existing is not None:
        if existing.points != points:
            raise SourceConflict(f"adjustment {source_id!r} already posted {existing.points} points")
        return existing
    program = program_for(session, workspace_id)
    now = utcnow()
    common: dict[str, Any] = {"kind": TxKind.ADJUST, "source_type": MANUAL, "source_id": source_id,
                              "reason": reason, "actor": actor, "occurred_at": now}
    if points > 0:
        plan = plan_adjust_credit(buckets(account), points)
        lot = NewLot(points, plan.lot_remaining, now, now, now, lot_expiry(program.expiry, now, program.timezone))
        return post(session, account, plan, new_lots=[lot], activity=True, **common)
    lots = settle(session, account, program, now=now)
    plan = plan_debit(buckets(account), lots, -points, sink=ADJUSTED, allow_negative=program.allow_negative_balance)
    return post(session, account, plan, **common)


def balance(session: Session, workspace_id: int, customer_id: int, *, expiring_within_days: int = 30) -> Balance:
    """What the customer holds now: available, pending, claw-back owed, expiring soon, lifetime totals."""
    repo = LedgerRepository(session, workspace_id)
    program = program_for(session, workspace_id)
    account = repo.account(customer_id)
    if account is None:
        if not repo.customer_exists(customer_id):
            raise NotFound(f"customer {customer_id} not found")
        return Balance(customer_id=customer_id, points_name=program.points_name,
                       expiring_within_days=expiring_within_days)
    now = utcnow()
    horizon = now + timedelta(days=expiring_within_days)
    lots = repo.open_lots(account.id)
    dated = sorted(((lot.expires_at, lot.remaining) for lot in lots if lot.expires_at is not None),
                   key=lambda pair: pair[0])
    expiring = sum(left for at, left in dated if at <= horizon)
    next_at = dated[0][0] if dated else None
    next_points = sum(left for at, left in dated if at == next_at) if next_at else 0
    deadline = inactivity_deadline(program.expiry, account.last_activity_at, program.timezone)
    if deadline is not None and (account.available > 0 or account.pending > 0):
        next_at, next_points = deadline, max(account.available, 0) + account.pending
        expiring = next_points if deadline <= horizon else 0
    totals = repo.totals_by_kind(account.id)
    return Balance(
        customer_id=customer_id, points_name=program.points_name, available=account.available,
        pending=account.pending, clawback_owed=-account.clawback, expiring_soon=expiring,
        expiring_within_days=expiring_within_days, next_expiry_at=next_at, next_expiry_points=next_points,
        lifetime_earned=account.lifetime_earned, lifetime_spent=account.lifetime_spent,
        lifetime_expired=-totals.get(TxKind.EXPIRE, (0, 0))[0],
        lifetime_reversed=-totals.get(TxKind.REVERSE, (0, 0))[0],
        lifetime_adjusted=sum(totals.get(TxKind.ADJUST, (0, 0))), last_activity_at=account.last_activity_at,
    )


def open_lots(session: Session, workspace_id: int, customer_id: int) -> list[PointLot]:
    """Unspent lots, in the order they would be spent."""
    from patronage.ledger.posting import spend_order

    repo = LedgerRepository(session, workspace_id)
    account = repo.account(customer_id)
    return sorted(repo.open_lots(account.id), key=spend_order) if account else []
