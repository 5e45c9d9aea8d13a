"""Live earnings of many sources at once (the batch job handlers): exactly ``service.earn`` per item, in
item order, in a constant number of statements.

Unlike ``bulk.earn_many`` (imports and replays), nothing here differs from ``earn``: accounts are locked
(created with zero balances when missing) like ``lock_account``, each transaction gets its own audit row
and domain event with the balances right after it, the account's ``last_activity_at`` is the last
earning's date, and cached balances are updated relatively. The plan of every transaction comes from
the same ``posting.plan_earn``, ``expiry_rules.lot_expiry`` and ``writer.earn_lot``.

``earn`` settles an ``after_inactivity`` account whose deadline passed before crediting it (releases and
expiries: row-by-row work). This module does not: it raises ``SettlementDue`` before writing anything,
and the caller posts that batch one earning at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, bindparam, select, update
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.kit.audit import AuditEntry
from patronage.kit.clock import utcnow
from patronage.kit.errors import NotFound
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.types import UTCDateTime
from patronage.kit.upsert import execute_many, insert_ignore, insert_rows, insert_with_ids
from patronage.ledger.bulk import ACCOUNTS, ENTRIES, ENTRY_COLUMNS, LOT_COLUMNS, LOTS, TXN_COLUMNS, TXNS, EarnItem
from patronage.ledger.expiry_rules import inactivity_deadline, lot_expiry
from patronage.ledger.models import TxKind
from patronage.ledger.posting import Buckets, Plan, plan_earn
from patronage.ledger.writer import EVENTS, NewLot, audit_data, earn_lot, event_payload, program_for

AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
AUDIT_COLUMNS = ("workspace_id", "actor", "action", "subject_type", "subject_id", "data", "at")


class SettlementDue(Exception):
    """An ``after_inactivity`` account's deadline passed: ``earn`` would settle it first."""


@dataclass
class HeldAccount:
    """A locked account: its balances as read under the lock, and as this batch leaves them."""

    id: int
    customer_id: int
    state: Buckets
    last_activity_at: datetime | None
    start: tuple[int, int, int]
    earned: int = 0
    touched: bool = False


def lock_accounts(session: Session, workspace_id: int, customer_ids: Sequence[int]) -> dict[int, HeldAccount]:
    """``service.lock_account`` for each customer, in ascending customer order (the house's lock order).

    Missing accounts are created empty (``ON CONFLICT DO NOTHING``, as ``lock_account`` does) and then
    locked; a customer that is not in the workspace is a ``NotFound``, as it is for ``lock_account``.
    """
    wanted = sorted(set(customer_ids))
    held = _locked(session, workspace_id, wanted)
    missing = [c for c in wanted if c not in held]
    if missing:
        found = set(session.scalars(select(Customer.id).where(Customer.workspace_id == workspace_id,
                                                              Customer.id.in_(missing))))
        if len(found) < len(missing):
            raise NotFound(f"customer {min(set(missing) - found)} not found")
        now = utcnow()
        insert_ignore(session, ACCOUNTS, [
            {"workspace_id": workspace_id, "customer_id": c, "available": 0, "pending": 0, "clawback": 0,
             "lifetime_earned": 0, "lifetime_spent": 0, "created_at": now, "updated_at": now} for c in missing
        ], conflict=("workspace_id", "customer_id"))
        held.update(_locked(session, workspace_id, missing))
    return held


def _locked(session: Session, workspace_id: int, customer_ids: list[int]) -> dict[int, HeldAccount]:
    c = ACCOUNTS.c
    out: dict[int, HeldAccount] = {}
    for start in range(0, len(customer_ids), 1000):
        stmt = (
            select(c.id, c.customer_id, c.available, c.pending, c.clawback, c.last_activity_at)
            .where(c.workspace_id == workspace_id, c.customer_id.in_(customer_ids[start:start + 1000]))
            .order_by(c.customer_id)
            .with_for_update()
        )
        for aid, cid, available, pending, clawback, last in session.execute(stmt):
            out[cid] = HeldAccount(aid, cid, Buckets(available, pending, clawback), last,
                                   (available, pending, clawback))
    return out


@dataclass(frozen=True)
class _Planned:
    account: HeldAccount
    item: EarnItem
    plan: Plan
    lot: NewLot
    after: Buckets


def earn_each(
    session: Session, workspace_id: int, accounts: dict[int, HeldAccount], items: Sequence[EarnItem], *,
    actor: str,
) -> list[int]:
    """``service.earn`` for each item, in order, on accounts locked by ``lock_accounts``; returns the
    transaction ids. The caller has checked under those locks that no item's source earned already (and
    that no source repeats). Raises ``SettlementDue`` (having written nothing) when ``earn`` would settle."""
    if not items:
        return []
    program = program_for(session, workspace_id)
    now = utcnow()
    planned: list[_Planned] = []
    for item in items:
        if item.points <= 0:
            raise ValueError("earned points must be positive")
        account = accounts[item.customer_id]
        if program.expiry.kind == "after_inactivity":
            deadline = inactivity_deadline(program.expiry, account.last_activity_at, program.timezone)
            if deadline is not None and deadline <= now:
                raise SettlementDue(f"customer {item.customer_id}: inactivity deadline {deadline.isoformat()}")
        pending = item.pending_until is not None and item.pending_until > now
        plan = plan_earn(account.state, item.points, pending=pending)
        account.state.apply(plan.deltas)
        account.earned += item.points
        account.last_activity_at, account.touched = item.earned_at, True  # earn sets it, later or not
        lot = earn_lot(item.points, plan, earned_at=item.earned_at, pending_until=item.pending_until, now=now,
                       expires_at=lot_expiry(program.expiry, item.earned_at, program.timezone))
        after = Buckets(account.state.available, account.state.pending, account.state.clawback)
        planned.append(_Planned(account, item, plan, lot, after))
    ids = insert_with_ids(session, TXNS, TXN_COLUMNS, [
        (workspace_id, p.account.id, p.item.customer_id, TxKind.EARN, p.item.source_type, p.item.source_id[:200],
         p.plan.customer_points, p.item.reason[:500], actor, p.item.earned_at, None,
         {**p.item.data, "repaid": p.plan.repaid} if p.plan.repaid else p.item.data, now, now)
        for p in planned
    ])
    _write_rows(session, workspace_id, ids, planned, actor=actor, now=now)
    _bump(session, workspace_id, [a for a in accounts.values() if a.touched], now)
    session.expire_all()  # balances changed underneath any account object loaded in this session
    record_events_bulk(session, workspace_id, [
        (EVENTS[TxKind.EARN], event_payload(
            TxKind.EARN, p.item.customer_id, txn_id, points=p.plan.customer_points, source_type=p.item.source_type,
            source_id=p.item.source_id[:200], after=p.after, new_lots=[p.lot]))
        for txn_id, p in zip(ids, planned, strict=True)
    ])
    return ids


def _write_rows(
    session: Session, ws: int, ids: list[int], planned: list[_Planned], *, actor: str, now: datetime
) -> None:
    """Entries, lots and audit rows of the transactions ``ids`` (one driver call per table)."""
    entries: list[tuple[Any, ...]] = []
    lots: list[tuple[Any, ...]] = []
    audits: list[tuple[Any, ...]] = []
    for txn_id, p in zip(ids, planned, strict=True):
        account_id, customer_id = p.account.id, p.item.customer_id
        entries += [(ws, txn_id, None if ":" in name else account_id, name, amount, now, now)
                    for name, amount in p.plan.entries]
        lot = p.lot
        lots.append((ws, account_id, customer_id, txn_id, lot.amount, lot.remaining, lot.earned_at, lot.available_at,
                     lot.released_at, lot.expires_at, None, now, now))
        audits.append((ws, actor, f"ledger.{TxKind.EARN}", "point_account", str(account_id),
                       audit_data(txn_id, customer_id, p.plan.customer_points, source_type=p.item.source_type,
                                  source_id=p.item.source_id[:200], reason=p.item.reason[:500]), now))
    insert_rows(session, ENTRIES, ENTRY_COLUMNS, entries)
    insert_rows(session, LOTS, LOT_COLUMNS, lots)
    insert_rows(session, AUDIT, AUDIT_COLUMNS, audits)


def _bump_statement() -> Any:
    """``_bump``'s relative UPDATE, built once (execute_many then compiles it once per dialect)."""
    c = ACCOUNTS.c

    def delta(name: str) -> Any:
        return bindparam(name, type_=Integer())

    return (
        update(ACCOUNTS)
        .where(c.id == delta("aid"), c.workspace_id == bindparam("ws"))
        .values(available=c.available + delta("d_available"), pending=c.pending + delta("d_pending"),
                clawback=c.clawback + delta("d_clawback"), lifetime_earned=c.lifetime_earned + delta("d_earned"),
                last_activity_at=bindparam("last", type_=UTCDateTime()),
                updated_at=bindparam("now", type_=UTCDateTime()))
    )


_BUMP = _bump_statement()


def _bump(session: Session, ws: int, accounts: list[HeldAccount], now: datetime) -> None:
    """One relative UPDATE per account (one executemany), as the sum of ``earn``'s bumps."""
    if not accounts:
        return
    execute_many(session, _BUMP, [
        {"aid": a.id, "ws": ws, "d_available": a.state.available - a.start[0],
         "d_pending": a.state.pending - a.start[1], "d_clawback": a.state.clawback - a.start[2],
         "d_earned": a.earned, "last": a.last_activity_at, "now": now}
        for a in accounts
    ])
