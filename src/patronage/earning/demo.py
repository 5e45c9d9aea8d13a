"""Demo earning program: a published rule set and the demo orders' points, posted by the bulk replay.

For ``domains.DEMO_LOADERS`` after ``patronage.events.demo.load_cdnow``: ``patronage.earning.demo.load``.
Idempotent: the rule set is created once and orders that already earned are skipped.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from patronage.earning import rulesets
from patronage.earning.replay import replay_orders
from patronage.earning.repository import RuleSetRepository
from patronage.kit.db import Database

NAME = "Demo program"
DOCUMENT: dict[str, Any] = {"stacking": "multiply", "rules": [
    {"key": "base", "name": "1 point per dollar", "effect": {"type": "per_currency", "points": 1}},
    {"key": "welcome", "name": "Welcome bonus on the first order", "when": {"first_order": True},
     "effect": {"type": "fixed", "points": 100}},
    {"key": "weekend", "name": "Double points at weekends", "when": {"time": {"days": ["sat", "sun"]}},
     "effect": {"type": "multiplier", "factor": 2}},
    {"key": "big-basket", "name": "25 points on orders of $100+, 3 times a month",
     "when": {"field": "order.net", "op": "gte", "value": 100}, "effect": {"type": "fixed", "points": 25},
     "limits": {"per_customer": {"times": 3, "period": "month"}}},
    {"key": "review", "name": "Points for a good review", "trigger": "review_posted",
     "when": {"field": "event.rating", "op": "gte", "value": 4}, "effect": {"type": "fixed", "points": 20},
     "limits": {"per_customer": {"times": 5, "period": "month"}}},
]}


def load(db: Database, workspace_id: int, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    with db.unit_of_work() as session:
        if RuleSetRepository(session, workspace_id).by_name(NAME) is None:
            rule_set = rulesets.create_rule_set(session, workspace_id, name=NAME, description="demo data",
                                                document=DOCUMENT, actor="demo")
            rulesets.publish(session, workspace_id, rule_set.id, 1, actor="demo")
    with db.unit_of_work() as session, console.status("posting the demo orders' points"):
        report = replay_orders(session, workspace_id, actor="demo")
    seconds = time.perf_counter() - started
    console.print(f"points: {report.points:,} on {report.posted:,} orders in {seconds:.1f} s")
    return {"orders": report.orders, "posted": report.posted, "points": report.points, "seconds": seconds}
