"""Backtests: run a rule-set version over past orders before it goes live, as a chain of chunk jobs.

Each job evaluates one chunk of orders (in placed_at order) with both the tested version and the live
rules, stores its running totals and progress on the ``Backtest`` row, commits, and enqueues the next
chunk; the last one writes the report. Nothing is posted to the ledger.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.earning import repository, rulesets, service
from patronage.earning.batch import BatchEvaluator, iter_orders
from patronage.earning.facts import Occurrence
from patronage.earning.models import Backtest, BacktestStatus
from patronage.earning.repository import OrderReader
from patronage.earning.schemas import BacktestCreate
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import NotFound
from patronage.kit.jobs import enqueue
from patronage.ledger.writer import program_for

TASK = "earning.backtest"
CHUNK = 5000
BUCKETS = (0, 1, 100, 500, 1000, 5000, 20000)
MONEY = Decimal("0.0001")


def start(session: Session, workspace_id: int, body: BacktestCreate, *, actor: str) -> Backtest:
    rulesets.get_version(session, workspace_id, body.rule_set_id, body.version)
    total = OrderReader(session, workspace_id).count_between(body.date_from, body.date_to)
    bt = Backtest(workspace_id=workspace_id, rule_set_id=body.rule_set_id, version=body.version,
                  date_from=body.date_from, date_to=body.date_to, status=BacktestStatus.QUEUED, processed=0,
                  total=total, cursor=0, state={}, created_by=actor)
    session.add(bt)
    session.flush()
    enqueue(session, TASK, {"backtest_id": bt.id}, workspace_id=workspace_id)
    audit(session, workspace_id=workspace_id, actor=actor, action="earning.backtest_started",
          subject_type="earning_backtest", subject_id=bt.id,
          data={"rule_set_id": body.rule_set_id, "version": body.version, "orders": total})
    return bt


def get(session: Session, workspace_id: int, backtest_id: int) -> Backtest:
    bt = repository.backtest(session, workspace_id, backtest_id)
    if bt is None:
        raise NotFound(f"backtest {backtest_id} not found")
    return bt


def run_chunk(session: Session, workspace_id: int, backtest_id: int, *, chunk: int = CHUNK) -> bool:
    """Process the next chunk; True when more chunks follow (the caller enqueues the next job)."""
    bt = repository.backtest(session, workspace_id, backtest_id, for_update=True)
    if bt is None or bt.status in (BacktestStatus.SUCCEEDED, BacktestStatus.FAILED):
        return False
    if bt.status == BacktestStatus.QUEUED:
        bt.status, bt.started_at = BacktestStatus.RUNNING, utcnow()
    program = program_for(session, workspace_id)
    draft_doc, _ = rulesets.live_rules(session, workspace_id, replace=(bt.rule_set_id, bt.version))
    live_doc, _ = rulesets.live_rules(session, workspace_id)
    state: dict[str, Any] = dict(bt.state or {})
    draft = BatchEvaluator(session, workspace_id, draft_doc, timezone=program.timezone, state=state.get("draft"))
    live = BatchEvaluator(session, workspace_id, live_doc, timezone=program.timezone, state=state.get("live"))
    after = (datetime.fromisoformat(state["cursor_at"]), int(state["cursor_id"])) if "cursor_at" in state else None
    rows = next(iter_orders(session, workspace_id, start=bt.date_from, end=bt.date_to, after=after, chunk=chunk), [])
    customers: dict[str, list[int]] = state.get("customers", {})
    rules: dict[str, list[int]] = state.get("rules", {})
    totals: dict[str, int] = state.get("totals", {"orders": 0, "earning_orders": 0, "draft": 0, "live": 0})
    ids = {row.customer_id for row in rows}
    draft.prefetch(ids)
    live.prefetch(ids)
    for row in rows:
        occurrence = Occurrence("order", row.placed_at, row.facts)
        d = draft.evaluate(occurrence, row.customer_id)
        c = live.evaluate(occurrence, row.customer_id)
        per = customers.setdefault(str(row.customer_id), [0, 0])
        per[0] += d.points
        per[1] += c.points
        totals["orders"] += 1
        totals["earning_orders"] += 1 if d.points else 0
        totals["draft"] += d.points
        totals["live"] += c.points
        for r in d.matched:
            if not r.points:
                continue
            stat = rules.setdefault(r.key, [0, 0])
            stat[0] += r.points
            stat[1] += 1
    bt.processed += len(rows)
    if rows:
        state.update(cursor_at=rows[-1].placed_at.isoformat(), cursor_id=rows[-1].id)
    state.update(draft=draft.state(), live=live.state(), customers=customers, rules=rules, totals=totals)
    if len(rows) < chunk:
        bt.result = report(session, workspace_id, customers, rules, totals)
        bt.status, bt.finished_at, bt.state = BacktestStatus.SUCCEEDED, utcnow(), {}
        return False
    bt.state = state
    return True


def fail(session: Session, workspace_id: int, backtest_id: int, error: str) -> None:
    bt = repository.backtest(session, workspace_id, backtest_id, for_update=True)
    if bt is not None:
        bt.status, bt.error, bt.finished_at = BacktestStatus.FAILED, error[:4000], utcnow()


def _distribution(points: list[int]) -> dict[str, Any]:
    earning = sorted(p for p in points if p > 0)
    if not earning:
        return {"customers": 0}
    q = statistics.quantiles(earning, n=100, method="inclusive") if len(earning) > 1 else [earning[0]] * 99
    buckets = {}
    for low, high in zip(BUCKETS, (*BUCKETS[1:], None), strict=True):
        label = f"{low}+" if high is None else f"{low}-{high - 1}"
        buckets[label] = sum(1 for p in points if p >= low and (high is None or p < high))
    return {
        "customers": len(earning), "mean": round(statistics.fmean(earning), 2), "median": statistics.median(earning),
        "p90": q[89], "p99": q[98], "max": earning[-1], "histogram": buckets,
        "deciles": [q[i] for i in range(9, 99, 10)],
    }


def report(session: Session, workspace_id: int, customers: dict[str, list[int]], rules: dict[str, list[int]],
           totals: dict[str, int]) -> dict[str, Any]:
    program = program_for(session, workspace_id)
    cost = (Decimal(totals["draft"]) * program.cost_per_point).quantize(MONEY)
    live_cost = (Decimal(totals["live"]) * program.cost_per_point).quantize(MONEY)
    breakage = program.breakage_rate
    draft_points = {int(k): v[0] for k, v in customers.items()}
    top = sorted(draft_points.items(), key=lambda kv: -kv[1])[:10]
    return {
        "orders": totals["orders"], "earning_orders": totals["earning_orders"],
        "points": {"tested": totals["draft"], "live": totals["live"], "delta": totals["draft"] - totals["live"]},
        "currency": program.currency, "cost_per_point": str(program.cost_per_point),
        "projected_cost": {"tested": str(cost), "live": str(live_cost), "delta": str(cost - live_cost)},
        "liability": None if breakage is None else {
            "breakage_rate": str(breakage), "tested": str((cost * (1 - breakage)).quantize(MONEY)),
            "live": str((live_cost * (1 - breakage)).quantize(MONEY)),
        },
        "by_rule": {k: {"points": v[0], "orders": v[1]} for k, v in sorted(rules.items())},
        "distribution": {"tested": _distribution(list(draft_points.values())),
                         "live": _distribution([v[1] for v in customers.values()])},
        "top_customers": [{"customer_id": c, "points": p} for c, p in top],
        "tiers": _tier_shift(session, workspace_id, draft_points, {int(k): v[1] for k, v in customers.items()}),
    }


def _tier_shift(session: Session, workspace_id: int, tested: dict[int, int], live: dict[int, int]) -> dict[str, Any]:
    """How tier membership would move, when the tiers domain can tell; else say so."""
    fn = service._optional("patronage.tiers.service", "simulate_tier_shift")
    if fn is not None:
        return {"available": True, **fn(session, workspace_id, tested=tested, live=live)}
    return {"available": False,
            "note": "the tiers domain offers no simulation; see the points distribution instead"}
