"""Set-based form of "add a credit, then evaluate its customer" for the per-order job batches.

``credit_each_and_evaluate(items)`` has exactly the effects of running, for each item in order,
``CreditRepository.add_once`` followed by ``qualification.evaluate`` of the item's customer, in a
constant number of statements: one INSERT for all credits, one read each of the ladder, the program,
the memberships and the metrics, one locking the customers' accounts, and the upgrades flushed and
announced together at the end.

Each evaluation must see the metric as it stood right after its own credit, not after the whole
batch's: the metrics are read once after the INSERT, and the credits the batch added for later items
are taken back out of them, then put back in one by one as the items are walked in order. So a
customer crossing a threshold mid-batch moves up at the same item, with the same value in the history,
as when run job by job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.jobs.queue import record_events_bulk
from patronage.ledger.batch_earn import lock_accounts
from patronage.tiers import repository as repo
from patronage.tiers.qualification import Evaluation, Events, apply_evaluation
from patronage.tiers.rules import Metric, current_window_start
from patronage.tiers.service import program


@dataclass(frozen=True)
class CreditItem:
    """One job's credit (``add_once``'s values)."""

    customer_id: int
    source_type: str
    source_id: str
    order_id: int | None
    occurred_at: datetime
    spend: Decimal = Decimal(0)
    orders: int = 0
    points: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return self.source_type, self.source_id

    def row(self) -> dict[str, object]:
        return {"customer_id": self.customer_id, "source_type": self.source_type, "source_id": self.source_id,
                "order_id": self.order_id, "occurred_at": self.occurred_at, "spend": self.spend,
                "orders": self.orders, "points": self.points}


def _amount(added: Any, metric: Metric) -> Decimal:
    """An added credit's amount of ``metric``, as stored (the database's rounding, not ours)."""
    value = {Metric.SPEND: added.spend, Metric.ORDERS: added.orders, Metric.POINTS_EARNED: added.points}[metric]
    return Decimal(str(value or 0))


def credit_each_and_evaluate(
    session: Session, workspace_id: int, items: Sequence[CreditItem], *, actor: str = "system"
) -> None:
    if not items:
        return
    credits = repo.CreditRepository(session, workspace_id)
    first: dict[tuple[str, str], CreditItem] = {}
    for item in items:
        first.setdefault(item.key, item)  # a repeated source: the first item adds it, the rest find it there
    added = {(a.source_type, a.source_id): a for a in credits.add_each_once([i.row() for i in first.values()])}
    ladder = repo.TierRepository(session, workspace_id).ladder()
    if not len(ladder):
        return  # nothing to qualify for: ``evaluate`` stops here too
    e = Evaluation(ladder, program(session, workspace_id), utcnow())
    start = current_window_start(e.settings.window, e.now, e.settings.tz)
    customers = sorted({i.customer_id for i in items})
    lock_accounts(session, workspace_id, customers)  # ``lock_account`` for each, in ascending customer order
    memberships = repo.MembershipRepository(session, workspace_id).for_customers(customers, for_update=True)
    values = credits.metrics_of(customers, e.settings.metric, start, None)
    # Which item added each new credit, and its amount when it falls in the current window.
    gains: dict[int, Decimal] = {}
    for index, item in enumerate(items):
        if item.key in added and first[item.key] is item and (start is None or item.occurred_at >= start):
            gains[index] = _amount(added[item.key], e.settings.metric)
            values[item.customer_id] = values.get(item.customer_id, Decimal(0)) - gains[index]
    events: Events = []
    for index, item in enumerate(items):
        cid = item.customer_id
        values[cid] = values.get(cid, Decimal(0)) + gains.get(index, Decimal(0))
        _, m = apply_evaluation(session, workspace_id, cid, memberships.get(cid), value=values[cid], e=e,
                                actor=actor, events=events)
        if m is not None:  # created by a first upgrade: the customer's next items find it
            memberships[cid] = m
    session.flush()
    record_events_bulk(session, workspace_id, events)
