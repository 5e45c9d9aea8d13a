"""Earning: build facts from the database, evaluate the live rules, post points to the ledger.

The same ``evaluate`` serves the live handlers, previews, backtests and bulk replays; the same
``ledger.earn`` (and its posting rules) records the result. Never commits.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.earning import rulesets
from patronage.earning.amounts import Line
from patronage.earning.engine import Evaluation, evaluate
from patronage.earning.facts import Context, CustomerFacts, Occurrence, OrderFacts
from patronage.earning.repository import OrderReader, UsageRepository
from patronage.earning.returns import points_to_reverse
from patronage.earning.rules_format import RuleSetDoc
from patronage.events.models import Order
from patronage.kit.clock import utcnow
from patronage.kit.errors import NotFound
from patronage.ledger import service as ledger
from patronage.ledger.bulk import EarnItem
from patronage.ledger.models import LedgerTransaction, TxKind
from patronage.ledger.repository import LedgerRepository
from patronage.ledger.writer import program_for

ORDER_SOURCE = "order"
NOT_EARNING_STATUSES = frozenset({"pending", "cancelled"})


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    try:
        found: Callable[..., Any] | None = getattr(importlib.import_module(module), name, None)
        return found
    except ImportError:
        return None


def tier_multiplier(session: Session, workspace_id: int, customer_id: int) -> Decimal:
    """The tiers domain's earning multiplier for the customer (1 without tiers)."""
    fn = _optional("patronage.tiers.service", "earning_multiplier")
    return Decimal(str(fn(session, workspace_id, customer_id))) if fn else Decimal(1)


def tier_name(session: Session, workspace_id: int, customer_id: int) -> str | None:
    fn = _optional("patronage.tiers.service", "effective_tier_id")
    if fn is None:
        return None
    tier_id = fn(session, workspace_id, customer_id)
    if tier_id is None:
        return None
    from patronage.tiers.models import Tier

    tier = session.get(Tier, tier_id)
    return tier.name if tier is not None and tier.workspace_id == workspace_id else None


def segments(session: Session, workspace_id: int, customer_id: int) -> frozenset[str]:
    fn = _optional("patronage.segments.service", "segment_keys_of") or _optional(
        "patronage.segments.service", "segments_of")
    return frozenset(str(s) for s in fn(session, workspace_id, customer_id)) if fn else frozenset()


def customer_facts(session: Session, workspace_id: int, customer: Customer, fields: set[str]) -> CustomerFacts:
    """What the rules may ask about the customer; tier and segments are looked up only when asked."""
    return CustomerFacts(
        id=customer.id,
        tier=tier_name(session, workspace_id, customer.id) if "customer.tier" in fields else None,
        segments=segments(session, workspace_id, customer.id) if "customer.segments" in fields else frozenset(),
        tags=frozenset(customer.tags or ()), attributes=dict(customer.attributes or {}),
        orders_count=customer.orders_count, country=customer.country, signed_up_at=customer.signed_up_at,
    )


def held_customer_facts(session: Session, workspace_id: int, customer_id: int, fields: set[str]) -> CustomerFacts:
    """``customer_facts`` of a customer whose account is locked (so who is in the workspace); the profile
    is read only when some rule asks about the customer (conditions are the only reader of these facts)."""
    if not any(f.startswith("customer.") for f in fields):
        return CustomerFacts(id=customer_id)
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    return customer_facts(session, workspace_id, customer, fields)


def order_facts(order: Order, *, first: bool) -> OrderFacts:
    return OrderFacts(
        id=str(order.id), total=order.total, subtotal=order.subtotal, discount_total=order.discount_total,
        currency=order.currency, channel=order.channel, store=order.store, first=first,
        attributes=dict(order.attributes or {}),
        lines=tuple(Line(str(li.position), li.sku, li.category, li.quantity, li.unit_price, li.discount, li.is_reward)
                    for li in order.lines),
    )


def context_for(session: Session, workspace_id: int, customer_id: int, doc: RuleSetDoc, trigger: str,
                *, multiplier: Decimal, lock_budgets: bool) -> Context:
    rules = doc.for_trigger(trigger)
    usage = UsageRepository(session, workspace_id)
    limited = [r.uid for r in rules if r.limits]
    budgets = [r.uid for r in rules if r.budget is not None]
    return Context(
        timezone=program_for(session, workspace_id).timezone, tier_multiplier=multiplier,
        usage=usage.customer_usage(customer_id, limited),
        budget_used=usage.lock_budgets(budgets) if lock_budgets else {},
    )


def _record_usage(session: Session, workspace_id: int, customer_id: int, ev: Evaluation) -> None:
    usage = UsageRepository(session, workspace_id)
    for inc in ev.usage:
        usage.add(inc.rule_uid, 0 if inc.period_key == "budget" else customer_id, inc.period_key, inc.points, inc.times)


def earn_data(ev: Evaluation, order: OrderFacts | None, labels: list[str], multiplier: Decimal) -> dict[str, Any]:
    """What the earn transaction keeps: per-line points (exact returns), rules and versions (audit)."""
    quantities = {line.key: line.quantity for line in order.lines} if order else {}
    return {
        "rule_sets": labels, "tier_multiplier": str(multiplier),
        "rules": [{"key": r.key, "points": r.points} for r in ev.matched if r.points],
        "lines": {k: {"points": v, "quantity": quantities.get(k, 1)} for k, v in ev.lines.items()},
        "base": str(sum((Decimal(v) for v in ev.net.values()), Decimal(0))),
    }


# ---- orders ------------------------------------------------------------------------------------------
def award_order(
    session: Session, workspace_id: int, order_id: int, *, actor: str = "system"
) -> LedgerTransaction | None:
    """Points for a recorded order (pending for the return window). Idempotent per order."""
    order = OrderReader(session, workspace_id).get(order_id)
    if order is None or order.status in NOT_EARNING_STATUSES:
        return None
    doc, labels = rulesets.live_rules(session, workspace_id)
    if not doc.for_trigger("order"):
        return None
    ledger.lock_account(session, workspace_id, order.customer_id)
    existing = ledger.find_earning(session, workspace_id, order.customer_id, ORDER_SOURCE, str(order.id))
    if existing is not None:
        return existing
    fields = doc.fields()
    # Only a "first order" condition reads ``first``: no query otherwise.
    facts = order_facts(order, first="order.first" in fields and OrderReader(session, workspace_id).is_first(order))
    multiplier = tier_multiplier(session, workspace_id, order.customer_id)
    ctx = context_for(session, workspace_id, order.customer_id, doc, "order", multiplier=multiplier, lock_budgets=True)
    ev = evaluate(doc, Occurrence("order", order.placed_at, facts),
                  held_customer_facts(session, workspace_id, order.customer_id, fields), ctx)
    if ev.points <= 0:
        return None
    _record_usage(session, workspace_id, order.customer_id, ev)
    item = order_earning(facts, ev, order_id=order.id, external_id=order.external_id, customer_id=order.customer_id,
                         placed_at=order.placed_at, labels=labels, multiplier=multiplier,
                         window_days=program_for(session, workspace_id).return_window_days)
    return ledger.earn(
        session, workspace_id, item.customer_id, item.points, source_type=item.source_type, source_id=item.source_id,
        reason=item.reason, actor=actor, earned_at=item.earned_at, pending_until=item.pending_until, data=item.data,
    )


def order_earning(
    facts: OrderFacts, ev: Evaluation, *, order_id: int, external_id: str, customer_id: int, placed_at: datetime,
    labels: list[str], multiplier: Decimal, window_days: int,
) -> EarnItem:
    """What an order's evaluation posts (the live handler, its batch form and the bulk replay): pending
    until ``placed_at`` + the return window."""
    return EarnItem(
        customer_id, ev.points, ORDER_SOURCE, str(order_id), f"order {external_id}", placed_at,
        placed_at + timedelta(days=window_days) if window_days > 0 else None,
        {"order_external_id": external_id, **earn_data(ev, facts, labels, multiplier)},
    )


def reverse_return(session: Session, workspace_id: int, payload: dict[str, Any]) -> LedgerTransaction | None:
    """A ``return.applied``: take back exactly what the returned lines earned (idempotent per return)."""
    customer_id, order_id = int(payload["customer_id"]), int(payload["order_id"])
    ledger.lock_account(session, workspace_id, customer_id)
    repo = LedgerRepository(session, workspace_id)
    earned = repo.find_transaction(customer_id, TxKind.EARN, ORDER_SOURCE, str(order_id))
    if earned is None:  # the return overtook the order's own earning job: earn first (idempotent)
        earned = award_order(session, workspace_id, order_id)
    if earned is None:
        return None
    rid = f"return:{payload['return_id']}"
    prior = [t for t in repo.reversals_of(earned.id) if t.data.get("reversal_id") != rid]
    points, detail = points_to_reverse(earned.data, [t.data for t in prior], payload)
    if points <= 0:
        return None
    return ledger.reverse(
        session, workspace_id, customer_id, source_type=ORDER_SOURCE, source_id=str(order_id), points=points,
        reversal_id=rid, reason=f"return {payload.get('external_id', payload['return_id'])}", actor="system",
        data={"return_id": payload["return_id"], **detail},
    )


def cancel_order(session: Session, workspace_id: int, customer_id: int, order_id: int) -> LedgerTransaction | None:
    """A cancelled order gives back everything it earned that no return took back yet."""
    return ledger.reverse(session, workspace_id, customer_id, source_type=ORDER_SOURCE, source_id=str(order_id),
                          reversal_id="cancelled", reason="order cancelled", actor="system")


# ---- other triggers ----------------------------------------------------------------------------------
def award_occurrence(
    session: Session, workspace_id: int, customer_id: int, trigger: str, *, source_type: str, source_id: str,
    at: datetime | None = None, properties: dict[str, Any] | None = None, actor: str = "system",
) -> LedgerTransaction | None:
    """Points for a signup, birthday, review, referral or custom event (available at once)."""
    doc, labels = rulesets.live_rules(session, workspace_id)
    if not doc.for_trigger(trigger):
        return None
    ledger.lock_account(session, workspace_id, customer_id)
    existing = ledger.find_earning(session, workspace_id, customer_id, source_type, source_id)
    if existing is not None:
        return existing
    multiplier = tier_multiplier(session, workspace_id, customer_id)
    ctx = context_for(session, workspace_id, customer_id, doc, trigger, multiplier=multiplier, lock_budgets=True)
    occurrence = Occurrence(trigger, at or utcnow(), None, properties or {})
    ev = evaluate(doc, occurrence, held_customer_facts(session, workspace_id, customer_id, doc.fields()), ctx)
    if ev.points <= 0:
        return None
    _record_usage(session, workspace_id, customer_id, ev)
    return ledger.earn(session, workspace_id, customer_id, ev.points, source_type=source_type, source_id=source_id,
                       reason=trigger.replace("_", " "), actor=actor, earned_at=occurrence.at,
                       data=earn_data(ev, None, labels, multiplier))
