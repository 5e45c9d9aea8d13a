"""Hooks into the customers domain, used when it offers them: the timeline, GDPR export and merge.

Registration is best-effort by design: the ledger works on its own, and each hook lights up when the
customers domain exposes the matching registry.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.ledger.models import LedgerTransaction, PointAccount, PointLot

_registered = False
KIND = "points"


def timeline_items(session: Session, workspace_id: int, customer_id: int, before: Any, limit: int) -> list[Any]:
    """Timeline source (customers/timeline.py contract): the customer's ledger transactions, newest first."""
    from patronage.customers.timeline import TimelineItem, before_clause

    stmt = (
        select(LedgerTransaction)
        .where(LedgerTransaction.workspace_id == workspace_id, LedgerTransaction.customer_id == customer_id,
               before_clause(LedgerTransaction.occurred_at, LedgerTransaction.id, KIND, before))
        .order_by(LedgerTransaction.occurred_at.desc(), LedgerTransaction.id.desc())
        .limit(limit)
    )
    return [
        TimelineItem(
            at=t.occurred_at, kind=KIND, id=t.id, title=f"{t.points:+d} points ({t.kind})",
            data={"kind": t.kind, "points": t.points, "reason": t.reason, "source_type": t.source_type,
                  "source_id": t.source_id},
        )
        for t in session.scalars(stmt)
    ]


def export_customer(session: Session, workspace_id: int, customer_id: int) -> dict[str, Any]:
    """GDPR export: the account, every transaction and every lot of the customer."""
    account = session.scalars(
        select(PointAccount).where(PointAccount.workspace_id == workspace_id, PointAccount.customer_id == customer_id)
    ).one_or_none()
    if account is None:
        return {"account": None, "transactions": [], "lots": []}
    txns = session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.workspace_id == workspace_id,
                                        LedgerTransaction.account_id == account.id).order_by(LedgerTransaction.id)
    )
    lots = session.scalars(
        select(PointLot).where(PointLot.workspace_id == workspace_id, PointLot.account_id == account.id)
        .order_by(PointLot.id)
    )
    return {
        "account": {"available": account.available, "pending": account.pending,
                    "clawback_owed": -account.clawback, "lifetime_earned": account.lifetime_earned,
                    "lifetime_spent": account.lifetime_spent},
        "transactions": [
            {"id": t.id, "kind": t.kind, "points": t.points, "source_type": t.source_type,
             "source_id": t.source_id, "reason": t.reason, "occurred_at": t.occurred_at.isoformat()}
            for t in txns
        ],
        "lots": [
            {"id": lot.id, "amount": lot.amount, "remaining": lot.remaining, "earned_at": lot.earned_at.isoformat(),
             "expires_at": lot.expires_at.isoformat() if lot.expires_at else None}
            for lot in lots
        ],
    }


def merge_customer(session: Session, workspace_id: int, from_customer_id: int, into_customer_id: int, *,
                   actor: str = "system") -> None:
    """Merge handler: the duplicate's points move to the survivor as new transactions."""
    from patronage.ledger.maintenance import merge_accounts

    merge_accounts(session, workspace_id, from_customer_id, into_customer_id, actor=actor)


def _hook(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def register() -> None:
    """Offer the ledger's timeline source, GDPR exporter and merge handler to the customers domain."""
    global _registered
    if _registered:
        return
    _registered = True
    if (register_source := _hook("patronage.customers.timeline", "register_source")) is not None:
        register_source(KIND, timeline_items)
    if (register_exporter := _hook("patronage.customers.gdpr", "register_exporter")) is not None:
        register_exporter("points", export_customer)
    if (register_merge := _hook("patronage.customers.merge", "register_merge_handler")) is not None:
        register_merge("points", merge_customer)
