"""Time-driven ledger work: release pending points, expire points, warn ahead of expiry; customer merge.

Each function handles one workspace and is safe to run again (what it posts is derived from the lots'
state under the account lock). The periodic jobs in tasks.py call them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.jobs import record_event
from patronage.ledger.expiry_rules import inactivity_deadline, shift_months
from patronage.ledger.models import TRANSFERRED, PointLot, TxKind
from patronage.ledger.posting import Plan, plan_transfer_in
from patronage.ledger.repository import LedgerRepository
from patronage.ledger.service import lock_account
from patronage.ledger.writer import NewLot, buckets, post, program_for, settle, spread_reduction

BATCH = 500


def settle_due(session: Session, workspace_id: int, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """Release matured pending lots and expire due lots, for up to ``limit`` customers. Returns how many
    customers were settled (call again while it returns ``limit``)."""
    now = now or utcnow()
    repo = LedgerRepository(session, workspace_id)
    program = program_for(session, workspace_id)
    customers = set(repo.customers_with_due_releases(now, limit)) | set(repo.customers_with_due_expiry(now, limit))
    if program.expiry.kind == "after_inactivity":
        # Coarse filter (a day of slack for month-end clamping); settle checks the exact local deadline.
        cutoff = shift_months(now, -program.expiry.months, ZoneInfo(program.timezone)) + timedelta(days=1)
        for customer_id, last in repo.customers_inactive_before(cutoff, limit):
            deadline = inactivity_deadline(program.expiry, last, program.timezone)
            if deadline is not None and deadline <= now:
                customers.add(customer_id)
    for customer_id in sorted(customers)[:limit]:  # ascending: the house lock order
        settle(session, lock_account(session, workspace_id, customer_id), program, now=now)
    return min(len(customers), limit)


def warn_expiring(session: Session, workspace_id: int, *, now: datetime | None = None) -> int:
    """Emit ``points.expiring_soon`` once per customer and expiry batch inside the warning horizon."""
    now = now or utcnow()
    program = program_for(session, workspace_id)
    if program.expiry.kind == "never" or program.expiry_warning_days <= 0:
        return 0
    repo = LedgerRepository(session, workspace_id)
    horizon = now + timedelta(days=program.expiry_warning_days)
    sent = 0
    if program.expiry.kind == "after_inactivity":
        lo = shift_months(now, -program.expiry.months, ZoneInfo(program.timezone)) - timedelta(days=1)
        hi = shift_months(horizon, -program.expiry.months, ZoneInfo(program.timezone)) + timedelta(days=1)
        for account in repo.accounts_to_warn_inactive(lo, hi):
            deadline = inactivity_deadline(program.expiry, account.last_activity_at, program.timezone)
            if deadline is None or not now < deadline <= horizon or account.inactivity_warned_for == deadline:
                continue
            repo.bump(account, {}, inactivity_warned_for=deadline)
            _warn(session, workspace_id, account.customer_id, max(account.available, 0) + account.pending,
                  deadline, lots=[], cause="inactivity")
            sent += 1
        return sent
    by_customer: dict[int, list[PointLot]] = defaultdict(list)
    for lot in repo.lots_to_warn(now, horizon):
        by_customer[lot.customer_id].append(lot)
    for customer_id, lots in by_customer.items():
        first = min(lot.expires_at for lot in lots if lot.expires_at is not None)
        _warn(session, workspace_id, customer_id, sum(lot.remaining for lot in lots), first,
              lots=[lot.id for lot in lots], cause="expiry date")
        repo.mark_warned([lot.id for lot in lots], now)
        sent += 1
    return sent


def _warn(session: Session, ws: int, customer_id: int, points: int, expires_at: datetime, *, lots: list[int],
          cause: str) -> None:
    record_event(session, ws, "points.expiring_soon", {
        "customer_id": customer_id, "points": points, "expires_at": expires_at.isoformat(),
        "lot_ids": lots, "cause": cause,
    })


def merge_accounts(session: Session, workspace_id: int, from_customer_id: int, into_customer_id: int, *,
                   actor: str) -> None:
    """Customer merge: move every point of ``from`` to ``into`` as two new transactions (never edits).

    Lots keep their dates (pending stays pending, expiry dates unchanged). Lifetime totals stay with the
    account whose transactions made them. Idempotent: a second call finds nothing left to move.
    """
    if from_customer_id == into_customer_id:
        return
    first, second = sorted((from_customer_id, into_customer_id))
    locked = {first: lock_account(session, workspace_id, first), second: lock_account(session, workspace_id, second)}
    loser, survivor = locked[from_customer_id], locked[into_customer_id]
    repo = LedgerRepository(session, workspace_id)
    now = utcnow()
    lots = repo.open_lots(loser.id)
    if not lots and (loser.available, loser.pending, loser.clawback) == (0, 0, 0):
        return
    available, pending, clawback = loser.available, loser.pending, loser.clawback
    moving = [(lot, lot.remaining) for lot in lots]  # remainders reload as 0 once taken below
    out = Plan()
    out.takes = list(moving)
    out.add("available", -available)
    out.add("pending", -pending)
    out.add("clawback", -clawback)
    out.add(TRANSFERRED, available + pending + clawback)
    reason = f"customer {from_customer_id} merged into {into_customer_id}"
    post(session, loser, out, kind=TxKind.TRANSFER, source_type="merge", source_id=f"into:{into_customer_id}",
         reason=reason, actor=actor, occurred_at=now, data={"into_customer_id": into_customer_id})
    survivor_lots = repo.open_lots(survivor.id)
    plan = plan_transfer_in(buckets(survivor), survivor_lots, available=available, pending=pending,
                            clawback=clawback, source=TRANSFERRED)
    moved_available = [(lot, left) for lot, left in moving if lot.released_at is not None]
    kept = spread_reduction([left for _, left in moved_available], max(available, 0) - plan.lot_remaining) \
        if available > 0 else [0 for _ in moved_available]
    remaining = dict(zip((lot.id for lot, _ in moved_available), kept, strict=True))
    new_lots = [
        NewLot(left, remaining.get(lot.id, left), lot.earned_at, lot.available_at, lot.released_at, lot.expires_at)
        for lot, left in moving
    ]
    post(session, survivor, plan, kind=TxKind.TRANSFER, source_type="merge", source_id=f"from:{from_customer_id}",
         reason=reason, actor=actor, occurred_at=now, data={"from_customer_id": from_customer_id},
         new_lots=new_lots)
    audit(session, workspace_id=workspace_id, actor=actor, action="ledger.merged", subject_type="customer",
          subject_id=into_customer_id, data={"from_customer_id": from_customer_id, "points": available + pending})
