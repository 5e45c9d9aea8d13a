"""Live orders earned set-based: the batch form of ``service.award_order`` (the ``earning.order_recorded``
jobs the worker claims together). Never commits.

``award_orders`` has exactly the effects of ``award_order`` called for each order in the given order,
with a constant number of statements per batch: the orders, their lines and who ordered first are read
with the replay's ``iter_orders``; every account is locked (or created) in customer order before any
limit counter is read, as ``award_order`` locks each one; the replay's ``BatchEvaluator`` evaluates each
order with the same engine, carrying each customer's limit usage from one order to the next in memory
(two orders of one customer see each other's usage, as they would one after the other); the points go
to the ledger through ``ledger.batch_earn`` (``earn`` per item, set-based), and the counters are
incremented relatively at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from patronage.earning import rulesets, service
from patronage.earning.batch import BatchEvaluator, OrderRow, count_usage, iter_orders
from patronage.earning.facts import Occurrence
from patronage.earning.repository import BUDGET_CUSTOMER, UsageRepository
from patronage.ledger.batch_earn import SettlementDue, earn_each, lock_accounts
from patronage.ledger.bulk import EarnItem, existing_sources
from patronage.ledger.writer import program_for


def award_orders(session: Session, workspace_id: int, order_ids: Sequence[int], *, actor: str = "system") -> None:
    """``service.award_order`` for each order id, in this order (repeats and orders that earned already
    are skipped, as the single handler skips them)."""
    doc, labels = rulesets.live_rules(session, workspace_id)
    rules = doc.for_trigger("order")
    if not rules or not order_ids:
        return
    # Pending and cancelled orders earn nothing yet (and lock nothing), as in award_order.
    found: dict[int, OrderRow] = {}
    for chunk in iter_orders(session, workspace_id, order_ids=sorted(set(order_ids)), skip_pending=True):
        found.update((row.id, row) for row in chunk)
    rows = [found[i] for i in order_ids if i in found]
    if not rows:
        return
    customers = sorted({row.customer_id for row in rows})
    accounts = lock_accounts(session, workspace_id, customers)
    done = existing_sources(session, workspace_id,
                            [(row.customer_id, service.ORDER_SOURCE, str(row.id)) for row in rows])
    fresh: list[OrderRow] = []
    for row in rows:
        key = (row.customer_id, service.ORDER_SOURCE, str(row.id))
        if key not in done:
            done.add(key)
            fresh.append(row)
    if not fresh:
        return
    program = program_for(session, workspace_id)
    engine = BatchEvaluator(session, workspace_id, doc, timezone=program.timezone, exact_tiers=True)
    usage = UsageRepository(session, workspace_id)
    # Locked after the accounts, as award_order locks them (created at zero when missing, as it does).
    engine.budget = usage.lock_budgets([r.uid for r in rules if r.budget is not None])
    known = {(uid, BUDGET_CUSTOMER, "budget") for uid in engine.budget}
    fresh_customers = sorted({row.customer_id for row in fresh})
    engine.prefetch(set(fresh_customers))
    for customer_id, used in usage.usage_of(fresh_customers, [r.uid for r in rules if r.limits]).items():
        engine.usage[customer_id].update(used)
        known.update((uid, customer_id, key) for uid, key in used)
    counters: dict[tuple[str, int, str], list[int]] = {}
    items: list[EarnItem] = []
    for row in fresh:
        ev = engine.evaluate(Occurrence("order", row.placed_at, row.facts), row.customer_id)
        if ev.points <= 0:
            continue
        count_usage(counters, row.customer_id, ev)
        items.append(service.order_earning(
            row.facts, ev, order_id=row.id, external_id=row.external_id, customer_id=row.customer_id,
            placed_at=row.placed_at, labels=labels, multiplier=engine.multiplier(row.customer_id),
            window_days=program.return_window_days))
    try:
        earn_each(session, workspace_id, accounts, items, actor=actor)
    except SettlementDue:
        # Nothing is posted yet (only accounts and budget counters created, which award_order creates
        # too): let award_order settle and earn one order at a time.
        for row in fresh:
            service.award_order(session, workspace_id, row.id, actor=actor)
        return
    usage.add_many({k: (v[0], v[1]) for k, v in counters.items()}, existing=known)
