"""Writing a planned transaction: the transaction row, its entries, lot changes, the account's cached
balances (relative updates), an audit row and a domain event. Also ``settle``: post what is due on a
locked account (pending lots whose window closed, lots past their expiry) before it is debited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.jobs import record_event
from patronage.ledger.expiry_rules import inactivity_deadline, is_expired
from patronage.ledger.models import (
    LedgerEntry,
    LedgerTransaction,
    LotAllocation,
    PointAccount,
    PointLot,
    TxKind,
)
from patronage.ledger.posting import Buckets, Plan, plan_expire, plan_release
from patronage.ledger.program import Program, load_program
from patronage.ledger.repository import LedgerRepository

EVENTS = {
    TxKind.EARN: "points.earned",
    TxKind.SPEND: "points.spent",
    TxKind.EXPIRE: "points.expired",
    TxKind.REVERSE: "points.reversed",
    TxKind.ADJUST: "points.adjusted",
}
_PROGRAM_CACHE = "ledger.program"


@dataclass(frozen=True)
class NewLot:
    amount: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    released_at: datetime | None
    expires_at: datetime | None


def program_for(session: Session, workspace_id: int) -> Program:
    """The workspace's program settings, read once per session (update_settings clears it)."""
    cache: dict[int, Program] = session.info.setdefault(_PROGRAM_CACHE, {})
    program = cache.get(workspace_id)
    if program is None:
        program = cache[workspace_id] = load_program(session, workspace_id)
    return program


def forget_program(session: Session, workspace_id: int) -> None:
    session.info.get(_PROGRAM_CACHE, {}).pop(workspace_id, None)


def buckets(account: PointAccount) -> Buckets:
    return Buckets(account.available, account.pending, account.clawback)


def spread_reduction(amounts: Sequence[int], reduction: int) -> list[int]:
    """Remainders of lots credited together when ``reduction`` points of them went to debts (first lots first)."""
    out = []
    for amount in amounts:
        cut = min(amount, reduction)
        reduction -= cut
        out.append(amount - cut)
    return out


def post(
    session: Session,
    account: PointAccount,
    plan: Plan,
    *,
    kind: str,
    source_type: str,
    source_id: str,
    reason: str,
    actor: str,
    occurred_at: datetime,
    data: dict[str, Any] | None = None,
    reverses_id: int | None = None,
    new_lots: Sequence[NewLot] = (),
    counters: dict[str, int] | None = None,
    activity: bool = False,
    emit: bool = True,
) -> LedgerTransaction:
    repo = LedgerRepository(session, account.workspace_id)
    ws = account.workspace_id
    txn = LedgerTransaction(
        workspace_id=ws, account_id=account.id, customer_id=account.customer_id, kind=kind,
        source_type=source_type, source_id=source_id[:200], points=plan.customer_points, reason=reason[:500],
        actor=actor, occurred_at=occurred_at, reverses_id=reverses_id, data=data or {},
    )
    session.add(txn)
    session.flush()
    session.add_all(
        LedgerEntry(workspace_id=ws, transaction_id=txn.id, account_id=account.id if ":" not in name else None,
                    account=name, amount=amount)
        for name, amount in plan.entries
    )
    for lot, part in plan.takes:
        lot.remaining = PointLot.remaining - part  # relative: UPDATE ... SET remaining = remaining - :part
        session.add(LotAllocation(workspace_id=ws, lot_id=lot.id, transaction_id=txn.id, amount=part))
    session.add_all(
        PointLot(workspace_id=ws, account_id=account.id, customer_id=account.customer_id, transaction_id=txn.id,
                 amount=lot.amount, remaining=lot.remaining, earned_at=lot.earned_at,
                 available_at=lot.available_at, released_at=lot.released_at, expires_at=lot.expires_at)
        for lot in new_lots
    )
    session.flush()
    values: dict[str, Any] = {"last_activity_at": occurred_at} if activity else {}
    repo.bump(account, {**plan.deltas, **(counters or {})}, **values)
    audit(session, workspace_id=ws, actor=actor, action=f"ledger.{kind}", subject_type="point_account",
          subject_id=account.id, data=audit_data(txn.id, account.customer_id, txn.points, source_type=source_type,
                                                 source_id=txn.source_id, reason=txn.reason))
    event = EVENTS.get(kind)
    if emit and event:
        record_event(session, ws, event, event_payload(
            kind, account.customer_id, txn.id, points=txn.points, source_type=source_type, source_id=txn.source_id,
            after=Buckets(account.available, account.pending), new_lots=new_lots))
    return txn


# The audit row and the domain event of a transaction, shared with the batch writer (batch_earn.py).
def audit_data(
    transaction_id: int, customer_id: int, points: int, *, source_type: str, source_id: str, reason: str
) -> dict[str, Any]:
    return {"transaction_id": transaction_id, "customer_id": customer_id, "points": points,
            "source_type": source_type, "source_id": source_id, "reason": reason}


def event_payload(
    kind: str, customer_id: int, transaction_id: int, *, points: int, source_type: str, source_id: str,
    after: Buckets, new_lots: Sequence[NewLot],
) -> dict[str, Any]:
    """What the transaction's event says; ``after`` is the account's balances once it is posted."""
    payload: dict[str, Any] = {
        "customer_id": customer_id, "transaction_id": transaction_id, "points": points,
        "source_type": source_type, "source_id": source_id, "available": after.available, "pending": after.pending,
    }
    if kind == TxKind.EARN and new_lots:
        lot = new_lots[0]
        payload.update(is_pending=lot.released_at is None, available_at=lot.available_at.isoformat(),
                       expires_at=lot.expires_at.isoformat() if lot.expires_at else None)
    return payload


def earn_lot(points: int, plan: Plan, *, earned_at: datetime, pending_until: datetime | None, now: datetime,
             expires_at: datetime | None) -> NewLot:
    """The lot an earning credits: pending (unreleased) until ``pending_until`` when that is still ahead."""
    pending = pending_until is not None and pending_until > now
    return NewLot(points, plan.lot_remaining, earned_at, pending_until or earned_at, None if pending else now,
                  expires_at)


def settle(session: Session, account: PointAccount, program: Program, *, now: datetime | None = None) -> list[PointLot]:
    """Release matured pending lots and expire due ones on a locked account; returns its open lots."""
    now = now or utcnow()
    repo = LedgerRepository(session, account.workspace_id)
    lots = repo.open_lots(account.id)
    for lot in [x for x in lots if x.released_at is None and x.available_at <= now]:
        release_lot(session, account, lot, now=now)
    deadline = inactivity_deadline(program.expiry, account.last_activity_at, program.timezone)
    due = [x for x in lots if x.remaining > 0 and (is_expired(x.expires_at, now) or is_expired(deadline, now))]
    if due:
        plan = plan_expire(due)
        cause = "inactivity" if is_expired(deadline, now) else "expiry date"
        post(session, account, plan, kind=TxKind.EXPIRE, source_type="lots", source_id=str(min(x.id for x in due)),
             reason=f"points expired ({cause})", actor="system", occurred_at=now,
             data={"lots": [x.id for x in due], "cause": cause})
    session.flush()
    return [x for x in lots if x.remaining > 0]  # remainders updated relatively reload on access


def release_lot(session: Session, account: PointAccount, lot: PointLot, *, now: datetime) -> LedgerTransaction | None:
    """A pending lot's window closed: its remaining points become available (a ``release`` transaction)."""
    if lot.released_at is not None:
        return None
    remaining = lot.remaining
    lot.released_at = now
    if remaining <= 0:
        session.flush()
        return None
    plan = plan_release(buckets(account), lot)
    if plan.lot_remaining != remaining:
        lot.remaining = PointLot.remaining - (remaining - plan.lot_remaining)
    return post(session, account, plan, kind=TxKind.RELEASE, source_type="lot", source_id=str(lot.id),
                reason="return window closed", actor="system", occurred_at=now,
                data={"lot_id": lot.id, "repaid": plan.repaid, "covered": plan.covered})
