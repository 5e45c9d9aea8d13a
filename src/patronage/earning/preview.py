""""What would this order earn?": the engine's explanation for an order, with nothing recorded."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.earning import rulesets, service
from patronage.earning.amounts import Line
from patronage.earning.engine import evaluate
from patronage.earning.facts import Context, CustomerFacts, Occurrence, OrderFacts
from patronage.earning.repository import OrderReader
from patronage.earning.schemas import PreviewIn, PreviewOrder, PreviewOut, RuleExplanation
from patronage.kit.clock import utcnow
from patronage.kit.errors import NotFound
from patronage.ledger.writer import program_for


def _described(order: PreviewOrder, currency: str, first: bool) -> OrderFacts:
    lines = tuple(
        Line(str(i), li.sku, li.category, li.quantity, li.unit_price, li.discount, li.is_reward)
        for i, li in enumerate(order.lines)
    )
    subtotal = order.subtotal if order.subtotal is not None else sum((li.net for li in lines), Decimal(0))
    total = order.total if order.total is not None else subtotal - order.discount_total
    return OrderFacts(id="preview", total=total, subtotal=subtotal, lines=lines, discount_total=order.discount_total,
                      currency=order.currency or currency, channel=order.channel, store=order.store, first=first,
                      attributes=order.attributes)


def preview(session: Session, workspace_id: int, body: PreviewIn) -> PreviewOut:
    program = program_for(session, workspace_id)
    replace = (body.rule_set_id, body.version) if body.rule_set_id is not None and body.version is not None else None
    doc, labels = rulesets.live_rules(session, workspace_id, replace=replace)
    reader = OrderReader(session, workspace_id)
    customer_id = body.customer_id
    if body.order_id is not None:
        stored = reader.get(body.order_id)
        if stored is None:
            raise NotFound(f"order {body.order_id} not found")
        customer_id = customer_id or stored.customer_id
        facts = service.order_facts(stored, first=reader.is_first(stored))
        at = stored.placed_at
    else:
        assert body.order is not None
        at = body.order.placed_at or utcnow()
        first = body.order.first_order
        customer: Customer | None = None
        if customer_id is not None:
            customer = session.get(Customer, customer_id)
        if first is None:
            first = customer is None or customer.orders_count == 0
        facts = _described(body.order, program.currency, first)
    if customer_id is not None:
        row = session.get(Customer, customer_id)
        if row is None or row.workspace_id != workspace_id:
            raise NotFound(f"customer {customer_id} not found")
        who = service.customer_facts(session, workspace_id, row, doc.fields())
        multiplier = service.tier_multiplier(session, workspace_id, customer_id)
        ctx = service.context_for(session, workspace_id, customer_id, doc, "order", multiplier=multiplier,
                                  lock_budgets=False)
    else:
        who, multiplier = CustomerFacts(id=0), Decimal(1)
        ctx = Context(timezone=program.timezone)
    ev = evaluate(doc, Occurrence("order", at, facts), who, ctx)
    window = program.return_window_days
    return PreviewOut(
        points=ev.points, lines=ev.lines, net=ev.net, tier_multiplier=str(multiplier), rule_sets=labels,
        pending_until=at + timedelta(days=window) if window > 0 and ev.points else None,
        rules=[RuleExplanation.model_validate(r, from_attributes=True) for r in ev.rules],
    )
