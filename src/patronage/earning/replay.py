"""Replaying past orders through the live (or a given) rule set and posting the points in bulk.

The batch twin of the ``order.recorded`` handler: the same engine, the same ``earn_data`` and the same
ledger posting rules (``ledger.bulk.earn_many`` plans with ``posting.plan_earn``), so a replay gives
every order exactly the points the live path would have given it. Idempotent: orders that already
earned are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from patronage.earning import rulesets
from patronage.earning.batch import CHUNK, BatchEvaluator, OrderRow, count_usage, iter_orders
from patronage.earning.facts import Occurrence
from patronage.earning.repository import UsageRepository
from patronage.earning.service import ORDER_SOURCE, order_earning
from patronage.kit.garbage import few_collections
from patronage.ledger.bulk import BulkResult, EarnItem, earn_many, existing_sources
from patronage.ledger.writer import program_for


@dataclass
class ReplayReport:
    orders: int = 0
    earning_orders: int = 0
    points: int = 0
    posted: int = 0
    skipped: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


def _chunks(
    session: Session, workspace_id: int, start: datetime | None, end: datetime | None,
    order_ids: Sequence[int] | None,
) -> Iterator[list[OrderRow]]:
    if order_ids is None:
        yield from iter_orders(session, workspace_id, start=start, end=end)
        return
    ids = sorted(set(order_ids))
    for at in range(0, len(ids), CHUNK):
        yield from iter_orders(session, workspace_id, start=start, end=end, order_ids=ids[at:at + CHUNK])


@few_collections
def replay_orders(
    session: Session, workspace_id: int, *, start: datetime | None = None, end: datetime | None = None,
    replace: tuple[int, int] | None = None, actor: str = "system", emit_events: bool = False,
    order_ids: Sequence[int] | None = None,
) -> ReplayReport:
    """Earn for the workspace's orders (or ``order_ids`` only: a bulk import's chunk, see
    ``earning.tasks.orders_imported``). A partial replay starts each customer's rule limits from what
    they already used; a full one counts them from zero, as the replay covers every order."""
    doc, labels = rulesets.live_rules(session, workspace_id, replace=replace)
    program = program_for(session, workspace_id)
    engine = BatchEvaluator(session, workspace_id, doc, timezone=program.timezone)
    engine.budget = UsageRepository(session, workspace_id).lock_budgets(
        [r.uid for r in doc.for_trigger("order") if r.budget is not None])
    report = ReplayReport()
    if not doc.for_trigger("order"):
        return report
    counters: dict[tuple[str, int, str], list[int]] = {}
    items: list[EarnItem] = []
    limited = [r.uid for r in doc.for_trigger("order") if r.limits]
    for rows in _chunks(session, workspace_id, start, end, order_ids):
        done = existing_sources(session, workspace_id, [(row.customer_id, ORDER_SOURCE, str(row.id)) for row in rows])
        report.skipped += sum(1 for row in rows if (row.customer_id, ORDER_SOURCE, str(row.id)) in done)
        fresh = [row for row in rows if (row.customer_id, ORDER_SOURCE, str(row.id)) not in done]
        engine.prefetch({row.customer_id for row in fresh})
        if order_ids is not None:
            new = {row.customer_id for row in fresh} - set(engine.usage)
            for customer_id, used in UsageRepository(session, workspace_id).usage_of(list(new), limited).items():
                engine.usage[customer_id].update(used)
        for row in fresh:
            ev = engine.evaluate(Occurrence("order", row.placed_at, row.facts), row.customer_id)
            count_usage(counters, row.customer_id, ev)
            report.orders += 1
            if ev.points <= 0:
                continue
            report.earning_orders += 1
            report.points += ev.points
            for r in ev.matched:
                report.by_rule[r.key] = report.by_rule.get(r.key, 0) + r.points
            items.append(order_earning(
                row.facts, ev, order_id=row.id, external_id=row.external_id, customer_id=row.customer_id,
                placed_at=row.placed_at, labels=labels, multiplier=engine.multiplier(row.customer_id),
                window_days=program.return_window_days))
    # One posting for everything: each account is written once (new ones straight with their balances).
    result: BulkResult = earn_many(session, workspace_id, items, actor=actor, emit_events=emit_events)
    report.posted += result.posted
    report.skipped += result.skipped
    UsageRepository(session, workspace_id).add_many({k: (v[0], v[1]) for k, v in counters.items()})
    return report
