"""Bulk earning for imports and replays: many ``earn`` transactions in a handful of driver calls.

It plans every transaction with the same ``posting.plan_earn`` and ``expiry_rules.lot_expiry`` as
``service.earn`` and keeps the same guarantees: idempotent by source (existing sources are skipped),
accounts locked (ascending customer order) before their balances are read, cached balances of existing
accounts updated relatively, every transaction balanced. New accounts are inserted with their final
balances; rows go to the database through ``kit.upsert`` (one ``executemany``/``COPY`` per table).

Differences from ``service.earn``, by design: one audit row per call (not per transaction), domain
events only when ``emit_events`` (a replay of history should not wake every journey), and no
inactivity settlement (run ``maintenance.settle_due`` afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, bindparam, case, select, update
from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.types import UTCDateTime
from patronage.kit.upsert import allocate_ids, insert_rows, insert_with_ids
from patronage.ledger.expiry_rules import lot_expiry
from patronage.ledger.models import LedgerEntry, LedgerTransaction, PointAccount, PointLot, TxKind
from patronage.ledger.posting import Buckets, plan_earn
from patronage.ledger.writer import earn_lot, program_for

TXN_COLUMNS = ("workspace_id", "account_id", "customer_id", "kind", "source_type", "source_id", "points", "reason",
               "actor", "occurred_at", "reverses_id", "data", "created_at", "updated_at")
ENTRY_COLUMNS = ("workspace_id", "transaction_id", "account_id", "account", "amount", "created_at", "updated_at")
LOT_COLUMNS = ("workspace_id", "account_id", "customer_id", "transaction_id", "amount", "remaining", "earned_at",
               "available_at", "released_at", "expires_at", "warned_at", "created_at", "updated_at")
TXNS: Table = LedgerTransaction.__table__  # type: ignore[assignment]
ENTRIES: Table = LedgerEntry.__table__  # type: ignore[assignment]
LOTS: Table = PointLot.__table__  # type: ignore[assignment]
ACCOUNTS: Table = PointAccount.__table__  # type: ignore[assignment]
ACCOUNT_COLUMNS = ("id", "workspace_id", "customer_id", "available", "pending", "clawback", "lifetime_earned",
                   "lifetime_spent", "last_activity_at", "inactivity_warned_for", "created_at", "updated_at")


@dataclass(frozen=True)
class EarnItem:
    customer_id: int
    points: int
    source_type: str
    source_id: str
    reason: str
    earned_at: datetime
    pending_until: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class BulkResult:
    posted: int = 0
    skipped: int = 0
    points: int = 0


@dataclass
class _Account:
    id: int
    state: Buckets
    new: bool
    earned: int = 0
    last: datetime | None = None
    start: tuple[int, int, int] = (0, 0, 0)


def existing_sources(
    session: Session, workspace_id: int, keys: Sequence[tuple[int, str, str]]
) -> set[tuple[int, str, str]]:
    """Which (customer, source type, source id) already earned."""
    t = TXNS.c
    types = sorted({k[1] for k in keys})
    found: set[tuple[int, str, str]] = set()
    for source_type in types:
        wanted = sorted({(k[0], k[2]) for k in keys if k[1] == source_type}, key=lambda k: (k[1], k[0]))
        if len(wanted) > 1000:  # an import: one probe may spare every chunk's look-up
            any_row = select(t.id).where(t.workspace_id == workspace_id, t.kind == TxKind.EARN,
                                         t.source_type == source_type).limit(1)
            if session.execute(any_row).first() is None:
                continue  # the common case of a first import: nothing to look up
        for start in range(0, len(wanted), 1000):
            part = set(wanted[start:start + 1000])
            # The customers too, so the look-up goes through uq_ledger_transactions_source.
            stmt = select(t.customer_id, t.source_id).where(
                t.workspace_id == workspace_id, t.customer_id.in_(sorted({c for c, _ in part})),
                t.kind == TxKind.EARN, t.source_type == source_type, t.source_id.in_(sorted({i for _, i in part})))
            found.update((c, source_type, i) for c, i in session.execute(stmt) if (c, i) in part)
    return found


def _accounts(session: Session, workspace_id: int, customer_ids: Sequence[int]) -> dict[int, _Account]:
    """Existing accounts locked in ascending customer order; ids allocated for the missing ones."""
    c = ACCOUNTS.c
    wanted = sorted(set(customer_ids))
    out: dict[int, _Account] = {}
    for start in range(0, len(wanted), 1000):
        stmt = (
            select(c.id, c.customer_id, c.available, c.pending, c.clawback)
            .where(c.workspace_id == workspace_id, c.customer_id.in_(wanted[start:start + 1000]))
            .order_by(c.customer_id)
            .with_for_update()
        )
        for aid, cid, available, pending, clawback in session.execute(stmt):
            out[cid] = _Account(aid, Buckets(available, pending, clawback), False,
                                start=(available, pending, clawback))
    missing = [cid for cid in wanted if cid not in out]
    for cid, aid in zip(missing, allocate_ids(session, ACCOUNTS, len(missing)), strict=True):
        out[cid] = _Account(aid, Buckets(), True)
    return out


def earn_many(
    session: Session, workspace_id: int, items: Sequence[EarnItem], *, actor: str, emit_events: bool = False,
) -> BulkResult:
    """Post ``items`` (in order) as earn transactions. Existing sources and non-positive points are skipped."""
    result = BulkResult()
    done = existing_sources(session, workspace_id, [(i.customer_id, i.source_type, i.source_id) for i in items])
    todo: list[EarnItem] = []
    for item in items:
        key = (item.customer_id, item.source_type, item.source_id)
        if item.points <= 0 or key in done:
            result.skipped += 1
            continue
        done.add(key)
        todo.append(item)
    if not todo:
        return result
    program = program_for(session, workspace_id)
    accounts = _accounts(session, workspace_id, [i.customer_id for i in todo])
    now = utcnow()
    txn_rows: list[tuple[Any, ...]] = []
    planned = []
    for item in todo:
        account = accounts[item.customer_id]
        pending = item.pending_until is not None and item.pending_until > now
        plan = plan_earn(account.state, item.points, pending=pending)
        account.state.apply(plan.deltas)
        account.earned += item.points
        account.last = item.earned_at if account.last is None or item.earned_at > account.last else account.last
        data = {**item.data, "repaid": plan.repaid} if plan.repaid else item.data
        txn_rows.append((workspace_id, account.id, item.customer_id, TxKind.EARN, item.source_type,
                         item.source_id[:200], plan.customer_points, item.reason[:500], actor, item.earned_at, None,
                         data, now, now))
        planned.append((account.id, plan, item, pending))
    new_accounts = [(cid, a) for cid, a in accounts.items() if a.new]
    if new_accounts:  # before the transactions that reference them
        insert_rows(session, ACCOUNTS, ACCOUNT_COLUMNS, [
            (a.id, workspace_id, cid, a.state.available, a.state.pending, a.state.clawback, a.earned, 0, a.last,
             None, now, now) for cid, a in new_accounts])
    ids = insert_with_ids(session, TXNS, TXN_COLUMNS, txn_rows)
    entry_rows: list[tuple[Any, ...]] = []
    lot_rows: list[tuple[Any, ...]] = []
    for txn_id, (account_id, plan, item, _) in zip(ids, planned, strict=True):
        for name, amount in plan.entries:
            entry_rows.append((workspace_id, txn_id, None if ":" in name else account_id, name, amount, now, now))
        lot = earn_lot(item.points, plan, earned_at=item.earned_at, pending_until=item.pending_until, now=now,
                       expires_at=lot_expiry(program.expiry, item.earned_at, program.timezone))
        lot_rows.append((workspace_id, account_id, item.customer_id, txn_id, lot.amount, lot.remaining, lot.earned_at,
                         lot.available_at, lot.released_at, lot.expires_at, None, now, now))
    insert_rows(session, ENTRIES, ENTRY_COLUMNS, entry_rows)
    insert_rows(session, LOTS, LOT_COLUMNS, lot_rows)
    _bump_existing(session, workspace_id, [a for a in accounts.values() if not a.new])
    session.expire_all()  # cached balances changed underneath any loaded account objects
    result.posted, result.points = len(ids), sum(i.points for i in todo)
    audit(session, workspace_id=workspace_id, actor=actor, action="ledger.bulk_earn", subject_type="workspace",
          subject_id=workspace_id, data={"transactions": result.posted, "points": result.points,
                                         "skipped": result.skipped})
    if emit_events:
        record_events_bulk(session, workspace_id, [
            ("points.earned", {"customer_id": item.customer_id, "transaction_id": txn_id, "points": item.points,
                               "source_type": item.source_type, "source_id": item.source_id, "is_pending": pending})
            for txn_id, (_, _, item, pending) in zip(ids, planned, strict=True)
        ])
    return result


def _bump_existing(session: Session, ws: int, accounts: list[_Account]) -> None:
    """One relative UPDATE per existing account (executemany): ``available = available + :d`` ..."""
    if not accounts:
        return
    c = ACCOUNTS.c
    last = bindparam("d_last", type_=UTCDateTime())
    stmt = (
        update(ACCOUNTS)
        .where(c.id == _int("aid"), c.workspace_id == ws)
        .values(available=c.available + _int("d_available"), pending=c.pending + _int("d_pending"),
                clawback=c.clawback + _int("d_clawback"), lifetime_earned=c.lifetime_earned + _int("d_earned"),
                last_activity_at=case((c.last_activity_at.is_(None), last), (c.last_activity_at < last, last),
                                      else_=c.last_activity_at))
    )
    session.execute(stmt, [
        {"aid": a.id, "d_available": a.state.available - a.start[0], "d_pending": a.state.pending - a.start[1],
         "d_clawback": a.state.clawback - a.start[2], "d_earned": a.earned, "d_last": a.last}
        for a in accounts
    ])


def _int(name: str) -> Any:
    return bindparam(name, type_=Integer())
