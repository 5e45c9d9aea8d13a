"""``patronage doctor`` checks proving the ledger's invariants (see docs/ledger.md#invariants).

They read every workspace: doctor is an operator's tool, not a tenant's.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from patronage.kit.doctor import Check, Finding
from patronage.ledger.models import (
    AVAILABLE,
    CLAWBACK,
    CUSTOMER_BUCKETS,
    PENDING,
    LedgerEntry,
    LedgerTransaction,
    LoyaltySettings,
    PointAccount,
    PointLot,
    TxKind,
)

SHOW = 5


def _finding(check: str, bad: Sequence[object], what: str, ok: str) -> list[Finding]:
    if bad:
        sample = ", ".join(str(b) for b in list(bad)[:SHOW])
        return [Finding(check, "error", f"{len(bad)} {what}: {sample}")]
    return [Finding(check, "ok", ok)]


def check_transactions_balance(session: Session) -> list[Finding]:
    """Every transaction's entries sum to zero, and its ``points`` equal its customer-bucket entries."""
    unbalanced = session.scalars(
        select(LedgerEntry.transaction_id).group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount) != 0)
    ).all()
    customer_side = (
        select(LedgerEntry.transaction_id.label("tid"), func.sum(LedgerEntry.amount).label("total"))
        .where(LedgerEntry.account.in_(CUSTOMER_BUCKETS))
        .group_by(LedgerEntry.transaction_id)
        .subquery()
    )
    mismatched = session.scalars(
        select(LedgerTransaction.id)
        .outerjoin(customer_side, customer_side.c.tid == LedgerTransaction.id)
        .where(func.coalesce(customer_side.c.total, 0) != LedgerTransaction.points)
    ).all()
    bad = [f"transaction {t} entries sum != 0" for t in unbalanced]
    bad += [f"transaction {t} points != its entries" for t in mismatched]
    return _finding("ledger.double_entry", bad, "unbalanced transaction(s)", "every transaction sums to zero")


def check_cached_balances(session: Session) -> list[Finding]:
    """Each account's cached buckets equal the sum of its entries; lifetime counters equal transactions."""
    sums = (
        select(
            LedgerEntry.account_id.label("aid"),
            *[func.sum(case((LedgerEntry.account == b, LedgerEntry.amount), else_=0)).label(b)
              for b in CUSTOMER_BUCKETS],
        )
        .where(LedgerEntry.account_id.is_not(None))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    rows = session.execute(
        select(PointAccount.id, PointAccount.available, PointAccount.pending, PointAccount.clawback,
               sums.c[AVAILABLE], sums.c[PENDING], sums.c[CLAWBACK])
        .outerjoin(sums, sums.c.aid == PointAccount.id)
    ).all()
    bad = [
        f"account {r[0]} cached {r[1]}/{r[2]}/{r[3]} != entries {r[4] or 0}/{r[5] or 0}/{r[6] or 0}"
        for r in rows
        if (r[1], r[2], r[3]) != (r[4] or 0, r[5] or 0, r[6] or 0)
    ]
    original = aliased(LedgerTransaction)
    refunds = (
        select(LedgerTransaction.account_id.label("aid"), func.sum(LedgerTransaction.points).label("refunded"))
        .join(original, original.id == LedgerTransaction.reverses_id)
        .where(LedgerTransaction.kind == TxKind.REVERSE, original.kind == TxKind.SPEND)
        .group_by(LedgerTransaction.account_id)
        .subquery()
    )
    kinds = (
        select(
            LedgerTransaction.account_id.label("aid"),
            func.sum(case((LedgerTransaction.kind == TxKind.EARN, LedgerTransaction.points), else_=0)).label("earned"),
            func.sum(case((LedgerTransaction.kind == TxKind.SPEND, -LedgerTransaction.points), else_=0)).label("spent"),
        )
        .group_by(LedgerTransaction.account_id)
        .subquery()
    )
    counters = session.execute(
        select(PointAccount.id, PointAccount.lifetime_earned, PointAccount.lifetime_spent,
               kinds.c.earned, kinds.c.spent, refunds.c.refunded)
        .outerjoin(kinds, kinds.c.aid == PointAccount.id)
        .outerjoin(refunds, refunds.c.aid == PointAccount.id)
    ).all()
    bad += [
        f"account {r[0]} lifetime earned/spent {r[1]}/{r[2]} != transactions "
        f"{r[3] or 0}/{(r[4] or 0) - (r[5] or 0)}"
        for r in counters
        if (r[1], r[2]) != (r[3] or 0, (r[4] or 0) - (r[5] or 0))
    ]
    return _finding("ledger.cached_balances", bad, "cached balance(s) differ from the entries",
                    "every cached balance equals its entries")


def check_lots(session: Session) -> list[Finding]:
    """Released lots hold the available balance (none when it is negative); unreleased lots the pending."""
    lots = (
        select(
            PointLot.account_id.label("aid"),
            func.sum(case((PointLot.released_at.is_not(None), PointLot.remaining), else_=0)).label("released"),
            func.sum(case((PointLot.released_at.is_(None), PointLot.remaining), else_=0)).label("unreleased"),
            func.sum(case(((PointLot.remaining < 0) | (PointLot.remaining > PointLot.amount), 1), else_=0))
            .label("odd"),
        )
        .group_by(PointLot.account_id)
        .subquery()
    )
    rows = session.execute(
        select(PointAccount.id, PointAccount.available, PointAccount.pending,
               lots.c.released, lots.c.unreleased, lots.c.odd)
        .outerjoin(lots, lots.c.aid == PointAccount.id)
    ).all()
    bad = []
    for aid, available, pending, released, unreleased, odd in rows:
        if (released or 0) != max(available, 0) or (unreleased or 0) != pending:
            bad.append(f"account {aid}: lots {released or 0}+{unreleased or 0} != balance {available}+{pending}")
        if odd:
            bad.append(f"account {aid}: {odd} lot(s) with remaining outside 0..amount")
    return _finding("ledger.lots", bad, "lot mismatch(es)", "lot remainders equal available + pending")


def check_negative_balances(session: Session) -> list[Finding]:
    """No negative available balance unless the workspace allows debt; pending never negative,
    claw-back never positive."""
    allows = (LoyaltySettings.allow_negative_balance.is_(True)) | (
        LoyaltySettings.reversal_shortfall == "negative_balance"
    )
    rows = session.execute(
        select(PointAccount.id, PointAccount.workspace_id, PointAccount.available, PointAccount.pending,
               PointAccount.clawback, func.coalesce(allows, False))
        .outerjoin(LoyaltySettings, LoyaltySettings.workspace_id == PointAccount.workspace_id)
        .where((PointAccount.available < 0) | (PointAccount.pending < 0) | (PointAccount.clawback > 0))
    ).all()
    bad = [
        f"account {r[0]} (workspace {r[1]}) available {r[2]} pending {r[3]} clawback {r[4]}"
        for r in rows
        if r[3] < 0 or r[4] > 0 or (r[2] < 0 and not r[5])
    ]
    return _finding("ledger.no_negative", bad, "account(s) in debt without the workspace allowing it",
                    "no account is in debt it is not allowed")


CHECKS: Sequence[Check] = (check_transactions_balance, check_cached_balances, check_lots, check_negative_balances)
