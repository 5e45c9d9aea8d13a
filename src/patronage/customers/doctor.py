"""``patronage doctor`` check for customers: each profile's order aggregates agree with its orders.

The aggregates (``orders_count``, ``total_spent``, ``first_order_at``, ``last_order_at``) are kept
relatively on every write (API, Shopify, bulk imports, returns, cancellations, merges); this proves
they still equal what the orders say:

- ``orders_count``: the orders not cancelled;
- ``total_spent``: their ``total - refunded_total`` (a cancellation releases what was not refunded);
- ``first_order_at`` / ``last_order_at``: the first and last ``placed_at`` of the orders that ever
  counted - not cancelled, or cancelled after they were recorded (a cancellation leaves the dates).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from patronage.customers.repository import aggregate_mismatches
from patronage.kit.doctor import Check, Finding

SHOW = 5


def check_order_aggregates(session: Session) -> list[Finding]:
    bad = aggregate_mismatches(session)
    if bad:
        sample = ", ".join(
            f"ws {r.workspace_id} customer {r.id}: {r.orders_count} orders / {r.total_spent} spent "
            f"vs {r.n} / {r.spent}" for r in bad[:SHOW])
        more = "+" if len(bad) >= 100 else ""
        return [Finding("customers.aggregates", "error",
                        f"{len(bad)}{more} profile(s) whose order aggregates disagree with their orders: {sample}")]
    return [Finding("customers.aggregates", "ok", "every profile's order aggregates match its orders")]


CHECKS: Sequence[Check] = (check_order_aggregates,)
