"""Evaluating many orders at once (replays and backtests): orders and customers read in chunks with
plain column queries, limits counted in memory, the same pure ``engine.evaluate`` per order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.earning import service
from patronage.earning.amounts import Line
from patronage.earning.engine import Evaluation, evaluate
from patronage.earning.facts import Context, CustomerFacts, Occurrence, OrderFacts
from patronage.earning.rules_format import RuleSetDoc
from patronage.events.models import Order, OrderLine

CHUNK = 5000


@dataclass(frozen=True)
class OrderRow:
    id: int
    external_id: str
    customer_id: int
    placed_at: datetime
    facts: OrderFacts


def iter_orders(
    session: Session, workspace_id: int, *, start: datetime | None = None, end: datetime | None = None,
    after: tuple[datetime, int] | None = None, chunk: int = CHUNK, order_ids: Sequence[int] | None = None,
    skip_pending: bool = False,
) -> Iterator[list[OrderRow]]:
    """Non-cancelled orders in (placed_at, id) order, in chunks, with ``first`` set exactly.

    ``order_ids``: only these orders (at most a few thousand; a bulk import's chunk, a batch of jobs).
    ``skip_pending``: leave out ``pending`` orders too (they earn when they move on), as the live handler
    does; a pending order still counts when deciding which order is a customer's first.
    """
    o = Order.__table__.c
    cursor = after
    # Every order from the first: ``first`` is who was seen first; otherwise it is looked up.
    seen: set[int] | None = set() if start is None and after is None and order_ids is None else None
    while True:
        stmt = select(o.id, o.external_id, o.customer_id, o.placed_at, o.total, o.subtotal, o.discount_total,
                      o.currency, o.channel, o.store, o.attributes).where(
            o.workspace_id == workspace_id, o.status != "cancelled")
        if skip_pending:
            stmt = stmt.where(o.status != "pending")
        if order_ids is not None:
            stmt = stmt.where(o.id.in_(list(order_ids)))
        if start is not None:
            stmt = stmt.where(o.placed_at >= start)
        if end is not None:
            stmt = stmt.where(o.placed_at < end)
        if cursor is not None:
            stmt = stmt.where((o.placed_at > cursor[0]) | ((o.placed_at == cursor[0]) & (o.id > cursor[1])))
        rows = session.execute(stmt.order_by(o.placed_at, o.id).limit(chunk)).all()
        if not rows:
            return
        lines = _lines(session, workspace_id, [r.id for r in rows])
        firsts = {} if seen is not None else _first_orders(session, workspace_id, {r.customer_id for r in rows})
        out = []
        for r in rows:
            if seen is not None:
                first = r.customer_id not in seen
                seen.add(r.customer_id)
            else:
                first = firsts.get(r.customer_id) == r.id
            facts = OrderFacts(
                id=str(r.id), total=r.total, subtotal=r.subtotal, discount_total=r.discount_total, currency=r.currency,
                channel=r.channel, store=r.store, first=first,
                attributes=r.attributes or {}, lines=tuple(lines.get(r.id, ())),
            )
            out.append(OrderRow(r.id, r.external_id, r.customer_id, r.placed_at, facts))
        yield out
        cursor = (rows[-1].placed_at, rows[-1].id)
        if len(rows) < chunk:
            return


def _lines(session: Session, workspace_id: int, order_ids: list[int]) -> dict[int, list[Line]]:
    c = OrderLine.__table__.c
    out: dict[int, list[Line]] = defaultdict(list)
    for start in range(0, len(order_ids), 5000):
        stmt = (
            select(c.order_id, c.position, c.sku, c.category, c.quantity, c.unit_price, c.discount, c.is_reward)
            .where(c.workspace_id == workspace_id, c.order_id.in_(order_ids[start:start + 5000]))
            .order_by(c.order_id, c.position)
        )
        for r in session.execute(stmt):
            out[r.order_id].append(Line(str(r.position), r.sku, r.category, r.quantity, r.unit_price, r.discount,
                                        bool(r.is_reward)))
    return out


def _first_orders(session: Session, workspace_id: int, customer_ids: set[int]) -> dict[int, int]:
    """Each customer's first non-cancelled order id (earliest placed_at, then lowest id)."""
    o = Order.__table__.c
    ids = sorted(customer_ids)
    out: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        earliest = (
            select(o.customer_id, func.min(o.placed_at).label("at"))
            .where(o.workspace_id == workspace_id, o.status != "cancelled", o.customer_id.in_(part))
            .group_by(o.customer_id).subquery()
        )
        stmt = (
            select(o.customer_id, func.min(o.id))
            .join(earliest, (earliest.c.customer_id == o.customer_id) & (earliest.c.at == o.placed_at))
            # The customers again here: without them the planner walks every order of the workspace.
            .where(o.workspace_id == workspace_id, o.status != "cancelled", o.customer_id.in_(part))
            .group_by(o.customer_id)
        )
        out.update({c: i for c, i in session.execute(stmt)})
    return out


class BatchEvaluator:
    """One rule document over many occurrences, limits tracked in memory from zero (or a saved state)."""

    def __init__(self, session: Session, workspace_id: int, doc: RuleSetDoc, *, timezone: str,
                 state: dict[str, Any] | None = None, exact_tiers: bool = False) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.doc = doc
        self.timezone = timezone
        self.fields = doc.fields()
        self.usage: dict[int, dict[tuple[str, str], tuple[int, int]]] = defaultdict(dict)
        self.budget: dict[str, int] = {}
        self._customers: dict[int, CustomerFacts] = {}
        self._multipliers: dict[int, Decimal] = {}
        self._uses_tiers = self._tiers_matter(exact_tiers)
        if state:
            self.load_state(state)

    def _tiers_matter(self, exact: bool) -> bool:
        """Whether to ask the tiers domain customer by customer. ``exact`` (live batches): whenever a tier
        exists, so the earn data records the multiplier as the live handler does ("1.0000", not "1")."""
        fn = service._optional("patronage.tiers.service", "list_tiers")
        if fn is None:
            return False
        tiers = fn(self.session, self.workspace_id)
        return bool(tiers) if exact else any(Decimal(t.earning_multiplier) != 1 for t in tiers)

    def prefetch(self, customer_ids: set[int]) -> None:
        """Customer facts for these customers, read with one column query per 5000."""
        if not any(f.startswith("customer.") for f in self.fields):
            return  # no rule asks about customers: ``evaluate`` uses bare facts
        c = Customer.__table__.c
        wanted = sorted(i for i in customer_ids if i not in self._customers)
        for start in range(0, len(wanted), 5000):
            stmt = select(c.id, c.tags, c.attributes, c.orders_count, c.country, c.signed_up_at).where(
                c.workspace_id == self.workspace_id, c.id.in_(wanted[start:start + 5000]))
            for r in self.session.execute(stmt):
                self._customers[r.id] = CustomerFacts(
                    id=r.id, tags=frozenset(r.tags or ()), attributes=r.attributes or {},
                    orders_count=r.orders_count, country=r.country, signed_up_at=r.signed_up_at,
                    tier=service.tier_name(self.session, self.workspace_id, r.id) if "customer.tier" in self.fields
                    else None,
                    segments=service.segments(self.session, self.workspace_id, r.id)
                    if "customer.segments" in self.fields else frozenset(),
                )

    def multiplier(self, customer_id: int) -> Decimal:
        if not self._uses_tiers:
            return Decimal(1)
        if customer_id not in self._multipliers:
            self._multipliers[customer_id] = service.tier_multiplier(self.session, self.workspace_id, customer_id)
        return self._multipliers[customer_id]

    def evaluate(self, occurrence: Occurrence, customer_id: int) -> Evaluation:
        customer = self._customers.get(customer_id) or CustomerFacts(id=customer_id)
        ctx = Context(timezone=self.timezone, tier_multiplier=self.multiplier(customer_id),
                      usage=self.usage[customer_id], budget_used=self.budget)
        ev = evaluate(self.doc, occurrence, customer, ctx, explain=False)
        for inc in ev.usage:
            if inc.period_key == "budget":
                self.budget[inc.rule_uid] = self.budget.get(inc.rule_uid, 0) + inc.points
            else:
                p, t = self.usage[customer_id].get((inc.rule_uid, inc.period_key), (0, 0))
                self.usage[customer_id][(inc.rule_uid, inc.period_key)] = (p + inc.points, t + inc.times)
        return ev

    def state(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "usage": [[c, uid, key, p, t] for c, u in self.usage.items() for (uid, key), (p, t) in u.items()],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.budget = {k: int(v) for k, v in state.get("budget", {}).items()}
        for c, uid, key, p, t in state.get("usage", []):
            self.usage[int(c)][(uid, key)] = (int(p), int(t))


def count_usage(counters: dict[tuple[str, int, str], list[int]], customer_id: int, ev: Evaluation) -> None:
    """Add an evaluation's limit usage to per-counter totals, keyed as ``UsageRepository.add_many`` wants
    (budget counters belong to no customer)."""
    for inc in ev.usage:
        key = (inc.rule_uid, 0 if inc.period_key == "budget" else customer_id, inc.period_key)
        counter = counters.setdefault(key, [0, 0])
        counter[0] += inc.points
        counter[1] += inc.times
