"""Tier reactions to domain events, and the daily review of periods, grace ends and overrides."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, batch_of, enqueue, on_event, periodic
from patronage.tiers import integrations, qualification
from patronage.tiers import repository as repo
from patronage.tiers.batch import CreditItem, credit_each_and_evaluate

REVIEW_TASK = "tiers.review"


def _event(ctx: JobContext) -> tuple[int, dict[str, Any]]:
    assert ctx.workspace_id is not None
    return ctx.workspace_id, dict(ctx.payload.get("payload") or {})


def _batch_workspace(contexts: Sequence[JobContext]) -> int:
    """The one workspace a batch's jobs share (the worker's contract; anything else fails the batch)."""
    workspaces = {ctx.workspace_id for ctx in contexts}
    if len(workspaces) != 1 or None in workspaces:
        raise ValueError(f"a batch needs one workspace, not {sorted(map(str, workspaces))}")
    (workspace_id,) = workspaces
    assert workspace_id is not None
    return workspace_id


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


@on_event("order.recorded", name="tiers.on_order_recorded")
def on_order_recorded(session: Session, ctx: JobContext) -> None:
    workspace_id, p = _event(ctx)
    qualification.credit_order(
        session, workspace_id, order_id=int(p["order_id"]), customer_id=int(p["customer_id"]),
        total=Decimal(str(p["total"])), placed_at=_when(p["placed_at"]),
    )
    qualification.evaluate(session, workspace_id, int(p["customer_id"]))


@batch_of("tiers.on_order_recorded")
def on_orders_recorded(session: Session, contexts: Sequence[JobContext]) -> None:
    """``on_order_recorded`` for a batch of jobs of one workspace, set-based (see batch.py)."""
    workspace_id, items = _batch_workspace(contexts), []
    for ctx in contexts:
        _, p = _event(ctx)
        order_id = int(p["order_id"])
        items.append(CreditItem(customer_id=int(p["customer_id"]), source_type="order", source_id=str(order_id),
                                order_id=order_id, occurred_at=_when(p["placed_at"]), spend=Decimal(str(p["total"])),
                                orders=1))
    credit_each_and_evaluate(session, workspace_id, items)


@on_event("orders.imported", name="tiers.on_orders_imported")
def on_orders_imported(session: Session, ctx: JobContext) -> None:
    """A bulk import's chunk: credit its orders set-based, then re-evaluate each customer credited
    (only when the workspace has tiers: without a ladder there is nothing to qualify for)."""
    from patronage.events.imported import imported_orders

    workspace_id, p = _event(ctx)
    customers = qualification.credit_orders(session, workspace_id, imported_orders(session, workspace_id, p))
    if customers and len(repo.TierRepository(session, workspace_id).ladder()):
        for customer_id in sorted(customers):  # the house lock order
            qualification.evaluate(session, workspace_id, customer_id)


@on_event("points.earned", name="tiers.on_points_earned")
def on_points_earned(session: Session, ctx: JobContext) -> None:
    """Earned points count in the window of their earning date (backdated earnings included)."""
    workspace_id, p = _event(ctx)
    points, txn_id = int(p.get("points") or 0), p.get("transaction_id")
    if points <= 0 or txn_id is None:
        return
    txn = repo.ledger_transaction(session, workspace_id, int(txn_id))
    if txn is None:
        return
    order_id = int(txn.source_id) if txn.source_type == "order" and txn.source_id.isdigit() else None
    qualification.credit_points(session, workspace_id, customer_id=txn.customer_id, points=points,
                                source_id=f"txn:{txn.id}", occurred_at=txn.occurred_at, order_id=order_id)
    qualification.evaluate(session, workspace_id, txn.customer_id)


@batch_of("tiers.on_points_earned")
def on_points_earned_batch(session: Session, contexts: Sequence[JobContext]) -> None:
    """``on_points_earned`` for a batch of jobs of one workspace: one read of their ledger transactions,
    then the credits and evaluations set-based (see batch.py)."""
    workspace_id = _batch_workspace(contexts)
    wanted: list[tuple[int, int]] = []  # (points, transaction id) of the jobs that credit anything
    for ctx in contexts:
        _, p = _event(ctx)
        points, txn_id = int(p.get("points") or 0), p.get("transaction_id")
        if points > 0 and txn_id is not None:
            wanted.append((points, int(txn_id)))
    txns = repo.ledger_transactions(session, workspace_id, [t for _, t in wanted]) if wanted else {}
    items = []
    for points, txn_id in wanted:
        txn = txns.get(txn_id)
        if txn is None:
            continue
        order_id = int(txn.source_id) if txn.source_type == "order" and txn.source_id.isdigit() else None
        items.append(CreditItem(customer_id=txn.customer_id, source_type="points", source_id=f"txn:{txn.id}",
                                order_id=order_id, occurred_at=txn.occurred_at, points=points))
    credit_each_and_evaluate(session, workspace_id, items)


@on_event("points.reversed", name="tiers.on_points_reversed")
def on_points_reversed(session: Session, ctx: JobContext) -> None:
    """A reversed earning stops counting, in the window the earning counted in. Refunds of spent points
    (reversals of a spend) are not earnings and do not count."""
    workspace_id, p = _event(ctx)
    txn_id = p.get("transaction_id")
    if txn_id is None:
        return
    txn = repo.ledger_transaction(session, workspace_id, int(txn_id))
    original = repo.ledger_transaction(session, workspace_id, txn.reverses_id) if txn and txn.reverses_id else None
    if txn is None or original is None or original.kind != "earn" or txn.points >= 0:
        return
    qualification.credit_points(session, workspace_id, customer_id=txn.customer_id, points=txn.points,
                                source_id=f"txn:{txn.id}", occurred_at=original.occurred_at)


@on_event("return.applied", name="tiers.on_return_applied")
def on_return_applied(session: Session, ctx: JobContext) -> None:
    workspace_id, p = _event(ctx)
    if p.get("order_id") is None:
        return
    qualification.credit_return(
        session, workspace_id, order_id=int(p["order_id"]), return_id=int(p["return_id"]),
        amount=Decimal(str(p.get("amount") or 0)),
    )


@on_event("order.status_changed", name="tiers.on_order_status_changed")
def on_order_status_changed(session: Session, ctx: JobContext) -> None:
    """A cancelled order stops counting, as if fully returned."""
    workspace_id, p = _event(ctx)
    if p.get("status") != "cancelled" or p.get("order_id") is None:
        return
    qualification.cancel_order_credit(session, workspace_id, order_id=int(p["order_id"]))


@periodic(REVIEW_TASK, "10 0 * * *")
def review(session: Session, ctx: JobContext) -> None:
    """Period ends, grace ends and override ends; a full batch re-enqueues itself for the rest."""
    assert ctx.workspace_id is not None
    batch = 500
    if qualification.run_reviews(session, ctx.workspace_id, batch=batch) >= batch:
        enqueue(session, REVIEW_TASK, {}, workspace_id=ctx.workspace_id, unique_key=f"tiers.review:{ctx.workspace_id}")
integrations.register()
