"""What earning left in a workspace, with its ids replaced by what they stand for (customers and orders by
external id, transactions by rank, rule uids by key, rule set labels by version), so two workspaces fed
the same orders can be compared field by field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.earning.models import RuleUsage
from patronage.events.models import Order
from patronage.kit.audit import AuditEntry
from patronage.kit.jobs.models import DomainEvent, Job
from patronage.ledger.models import LedgerEntry, LedgerTransaction, PointAccount, PointLot


def ledger_snapshot(session: Session, ws: int) -> dict[str, Any]:
    customers = dict(session.execute(
        select(Customer.id, Customer.external_id).where(Customer.workspace_id == ws)).all())
    orders = {str(i): e for i, e in session.execute(
        select(Order.id, Order.external_id).where(Order.workspace_id == ws))}
    txns = list(session.scalars(select(LedgerTransaction).where(LedgerTransaction.workspace_id == ws)
                                .order_by(LedgerTransaction.id)))
    rank = {t.id: n for n, t in enumerate(txns)}
    accounts = {a.id: customers[a.customer_id] for a in session.scalars(
        select(PointAccount).where(PointAccount.workspace_id == ws))}

    def source(source_type: str, source_id: str) -> str:
        if source_type == "signup":
            return customers[int(source_id)]
        return orders.get(source_id, source_id) if source_type == "order" else source_id

    def data(d: dict[str, Any]) -> dict[str, Any]:
        out = dict(d)
        if "rule_sets" in out:
            out["rule_sets"] = [label.split(":")[1] for label in out["rule_sets"]]
        if "transaction_id" in out:
            out["transaction_id"] = rank[out["transaction_id"]]
        if "customer_id" in out:
            out["customer_id"] = customers[out["customer_id"]]
        if "source_id" in out:
            out["source_id"] = source(out.get("source_type", ""), out["source_id"])
        return out

    entries: dict[int, list[tuple[Any, ...]]] = {}
    for e in session.scalars(select(LedgerEntry).where(LedgerEntry.workspace_id == ws).order_by(LedgerEntry.id)):
        entries.setdefault(rank[e.transaction_id], []).append(
            (e.account, e.amount, accounts[e.account_id] if e.account_id else None))
    lots = [(rank[x.transaction_id], customers[x.customer_id], x.amount, x.remaining, x.earned_at, x.available_at,
             x.released_at, x.expires_at)
            for x in session.scalars(select(PointLot).where(PointLot.workspace_id == ws).order_by(PointLot.id))]
    events = list(session.scalars(select(DomainEvent).where(DomainEvent.workspace_id == ws,
                                                           DomainEvent.type.like("points.%"))
                                  .order_by(DomainEvent.id)))
    jobs: dict[int, list[str]] = {}
    for job in session.scalars(select(Job).where(Job.workspace_id == ws)):
        event_id = (job.payload or {}).get("event_id")
        if event_id is not None:
            jobs.setdefault(int(event_id), []).append(job.task)
    return {
        "accounts": sorted(
            (customers[a.customer_id], a.available, a.pending, a.clawback, a.lifetime_earned, a.lifetime_spent,
             a.last_activity_at)
            for a in session.scalars(select(PointAccount).where(PointAccount.workspace_id == ws))),
        "transactions": [
            (customers[t.customer_id], accounts[t.account_id], t.kind, t.source_type,
             source(t.source_type, t.source_id), t.points, t.reason, t.actor, t.occurred_at, data(t.data),
             entries.get(rank[t.id]))
            for t in txns],
        "lots": lots,
        "usage": sorted(
            (u.rule_uid.split(":", 1)[1], customers.get(u.customer_id, "budget"), u.period_key, u.points, u.times)
            for u in session.scalars(select(RuleUsage).where(RuleUsage.workspace_id == ws))),
        "audit": [
            (a.actor, a.action, a.subject_type, accounts[int(a.subject_id)], data(a.data))
            for a in session.scalars(select(AuditEntry).where(AuditEntry.workspace_id == ws,
                                                              AuditEntry.action.like("ledger.%"))
                                     .order_by(AuditEntry.id))],
        "events": [(e.type, data(e.payload), sorted(jobs.get(e.id, []))) for e in events],
    }
