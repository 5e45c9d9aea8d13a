"""Lifecycle stage service: recompute one customer (after an order or return) or a whole workspace
(daily, for the time-based transitions), keep the stage history and emit domain events.

Events: ``customer.stage_exited`` {customer_id, stage, to} then ``customer.stage_entered``
{customer_id, stage, from, reason}, in the transaction that changed the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.activity_repository import ActivityRepository
from patronage.customers.definitions import load_settings
from patronage.customers.lifecycle_repository import StageHistoryRepository
from patronage.customers.lifecycle_rules import (
    Activity,
    LifecycleDefinitions,
    Stage,
    StageDecision,
    compute_stage,
)
from patronage.customers.models import Customer, StageHistory
from patronage.customers.repository import CustomerRepository
from patronage.kit.clock import utcnow
from patronage.kit.jobs.queue import record_events_bulk

BULK_CHUNK = 2000
Transition = tuple[int, str, StageDecision]  # (customer id, previous stage, decision)


def start_history(session: Session, workspace_id: int, customer_ids: Sequence[int], at: datetime | None) -> None:
    """New profiles start as prospects."""
    when = at or utcnow()
    StageHistoryRepository(session, workspace_id).insert_many(
        [(cid, Stage.PROSPECT.value, None, when, {}) for cid in customer_ids]
    )


def history(session: Session, workspace_id: int, customer_id: int) -> list[StageHistory]:
    return StageHistoryRepository(session, workspace_id).for_customer(customer_id)


def close_history(session: Session, workspace_id: int, customer_id: int) -> None:
    """A merged-away profile leaves its stage (its history stays, closed)."""
    StageHistoryRepository(session, workspace_id).close_open([customer_id], utcnow())


def _signals(
    session: Session, workspace_id: int, customer_ids: Sequence[int], rules: LifecycleDefinitions, now: datetime
) -> dict[int, int]:
    since = now - timedelta(days=rules.advocate_window_days)
    return ActivityRepository(session, workspace_id).count_signals(customer_ids, rules.advocate_event_types, since)


def recompute_customer(session: Session, workspace_id: int, customer_id: int) -> StageDecision | None:
    """Re-evaluate one customer now; records a transition when the stage changed. None if not found."""
    customer = CustomerRepository(session, workspace_id).refresh(customer_id)
    if customer is None or customer.merged_into_id is not None:
        return None
    _, rules = load_settings(session, workspace_id)
    now = utcnow()
    activity = Activity(
        customer.orders_count, customer.total_spent, customer.first_order_at, customer.last_order_at,
        _signals(session, workspace_id, [customer.id], rules, now).get(customer.id, 0),
    )
    decision = compute_stage(activity, rules, now)
    apply_transitions(session, workspace_id, [(customer.id, customer.lifecycle_stage, decision)], now)
    return decision


def recompute_one(session: Session, workspace_id: int, customer_id: int) -> Customer:
    """``recompute_customer`` for the API: 404 for an unknown customer, returns the fresh profile."""
    repo = CustomerRepository(session, workspace_id)
    repo.get_or_404(customer_id)
    recompute_customer(session, workspace_id, customer_id)
    return repo.get_or_404(customer_id)


def recompute_workspace(session: Session, workspace_id: int, *, chunk: int = BULK_CHUNK) -> int:
    """Re-evaluate every (unmerged) customer, a chunk at a time; returns how many changed stage."""
    _, rules = load_settings(session, workspace_id)
    now = utcnow()
    customers = CustomerRepository(session, workspace_id)
    changed, after = 0, 0
    while True:
        rows = customers.activity_chunk(after, chunk)
        if not rows:
            return changed
        after = rows[-1].id
        changed += _recompute_rows(session, workspace_id, rows, rules, now)


def recompute_customers(session: Session, workspace_id: int, customer_ids: Sequence[int], *,
                        chunk: int = BULK_CHUNK) -> int:
    """Re-evaluate these customers (a bulk import's, a batch of jobs'), set-based; returns how many
    changed stage. Each is evaluated once, as ``recompute_customer`` would the first time (a second time
    in the same transaction finds the stage it just set). Within a chunk, history rows and events follow
    the customers' first appearance in ``customer_ids``, as one ``recompute_customer`` per id would."""
    _, rules = load_settings(session, workspace_id)
    now = utcnow()
    customers = CustomerRepository(session, workspace_id)
    first_seen = {cid: i for i, cid in enumerate(dict.fromkeys(customer_ids))}
    wanted = sorted(first_seen)
    changed = 0
    for start in range(0, len(wanted), chunk):
        rows = customers.activity_for(wanted[start:start + chunk])
        rows.sort(key=lambda r: first_seen[r.id])
        changed += _recompute_rows(session, workspace_id, rows, rules, now)
    return changed


def _recompute_rows(
    session: Session, workspace_id: int, rows: Sequence[Any], rules: LifecycleDefinitions, now: datetime
) -> int:
    signals = _signals(session, workspace_id, [r.id for r in rows], rules, now)
    transitions: list[Transition] = []
    for r in rows:
        activity = Activity(r.orders_count, r.total_spent, r.first_order_at, r.last_order_at, signals.get(r.id, 0))
        transitions.append((r.id, r.lifecycle_stage, compute_stage(activity, rules, now)))
    return apply_transitions(session, workspace_id, transitions, now)


def apply_transitions(session: Session, workspace_id: int, transitions: Sequence[Transition], now: datetime) -> int:
    """Persist the stage changes among ``transitions``: profile column, history rows, domain events.

    Profiles are updated in ascending id order (the lock order); history rows and events are written in
    the order of ``transitions``."""
    moves = [t for t in transitions if t[2].stage.value != t[1]]
    if not moves:
        return 0
    CustomerRepository(session, workspace_id).set_stages(sorted((cid, d.stage.value) for cid, _, d in moves))
    history_repo = StageHistoryRepository(session, workspace_id)
    history_repo.close_open([cid for cid, _, _ in moves], now)
    history_repo.insert_many([(cid, d.stage.value, old, now, d.reason) for cid, old, d in moves])
    events: list[tuple[str, dict[str, Any]]] = []
    for cid, old, decision in moves:
        new = decision.stage.value
        events.append(("customer.stage_exited", {"customer_id": cid, "stage": old, "to": new}))
        events.append(
            ("customer.stage_entered", {"customer_id": cid, "stage": new, "from": old, "reason": decision.reason})
        )
    record_events_bulk(session, workspace_id, events)
    return len(moves)
