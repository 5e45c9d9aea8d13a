"""Return rules: idempotent by external id, applied against the order, or held until the order arrives.

Applying a return raises ``order.refunded_total`` (relatively, with the order row locked), lowers the
customer's aggregates, and records ``return.applied``, from which the loyalty engine reverses points.
Never commits.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.service import record_orders_totals
from patronage.events import rules
from patronage.events.arrival_lock import guard_held_return
from patronage.events.models import Order, Return
from patronage.events.repository import OrderRepository, ReturnRepository
from patronage.events.schemas import Outcome, ReturnIn, content_hash
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound, PatronageError
from patronage.kit.jobs import record_event


class ReturnFinal(Conflict):
    code = "return_final"
    title = "This return was already applied or rejected and can no longer change"


def get_return(session: Session, workspace_id: int, external_id: str) -> Return:
    found = ReturnRepository(session, workspace_id).by_external_id(external_id)
    if found is None:
        raise NotFound(f"return {external_id!r} not found")
    return found


def _view(session: Session, workspace_id: int, order: Order) -> tuple[rules.OrderView, dict[int, int]]:
    lines = [
        rules.LineView(line.position, line.line_id, line.sku, line.quantity, line.unit_price, line.discount,
                       line.is_reward)
        for line in order.lines
    ]
    view = rules.OrderView(order.currency, order.total, order.refunded_total, lines)
    done = rules.returned_quantities(ReturnRepository(session, workspace_id).applied_lines(order.id))
    return view, done


def _kind(data: ReturnIn) -> str:
    return "lines" if data.lines else ("amount" if data.amount is not None else "full")


def record_return(
    session: Session, workspace_id: int, data: ReturnIn, *, actor: str, source: str = "api"
) -> tuple[Outcome, Return]:
    """Apply a return to its order now, or hold it until the order arrives.

    Re-sending the same return is ``unchanged``. A held return may be replaced by a changed one
    (``updated``); an applied or rejected one can no longer change (409).
    """
    digest = content_hash(data)  # as sent: a re-send without returned_at is still the same return
    if data.returned_at is None:
        data = data.model_copy(update={"returned_at": utcnow()})
    repo = ReturnRepository(session, workspace_id)
    existing = repo.by_external_id(data.external_id, for_update=True)
    if existing is not None:
        if existing.content_hash == digest:
            return "unchanged", existing
        if existing.status != "held":
            raise ReturnFinal(
                f"return {data.external_id!r} is {existing.status}; send a new return with another external_id"
            )
        if existing.order_external_id != data.order_external_id:
            raise ReturnFinal(f"return {data.external_id!r} belongs to order {existing.order_external_id!r}")
        _fill(existing, data, digest)
        order = _order_or_guard(session, workspace_id, data.order_external_id)
        if order is not None:  # arrived meanwhile: apply now
            apply(session, workspace_id, order, existing, data)
        session.flush()
        return "updated", existing
    order = _order_or_guard(session, workspace_id, data.order_external_id)
    ret = Return(workspace_id=workspace_id, external_id=data.external_id,
                 order_external_id=data.order_external_id, status="held", source=source)
    _fill(ret, data, digest)
    if order is None:
        repo.add(ret)
        return "created", ret
    view, done = _view(session, workspace_id, order)
    plan = rules.plan_return(view, data, done)  # a 422 here writes nothing
    repo.add(ret)
    _apply_plan(session, workspace_id, order, ret, plan)
    return "created", ret


def _order_or_guard(session: Session, workspace_id: int, external_id: str) -> Order | None:
    """The order (locked), or None after ``guard_held_return``: an order arriving from now on sees the
    return this transaction holds, and one that committed while we waited is found by the second look."""
    repo = OrderRepository(session, workspace_id)
    order = repo.by_external_id(external_id, for_update=True)
    if order is None and guard_held_return(session, workspace_id, external_id):
        order = repo.by_external_id(external_id, for_update=True)
    return order


def _fill(ret: Return, data: ReturnIn, digest: str) -> None:
    assert data.returned_at is not None
    ret.kind = _kind(data)
    ret.amount = data.amount if data.amount is not None else Decimal(0)
    ret.currency = data.currency
    ret.reason = data.reason
    ret.returned_at = data.returned_at
    ret.lines = [line.model_dump(mode="json") for line in data.lines]
    ret.request = data.model_dump(mode="json")
    ret.content_hash = digest


def apply(session: Session, workspace_id: int, order: Order, ret: Return, data: ReturnIn) -> None:
    view, done = _view(session, workspace_id, order)
    _apply_plan(session, workspace_id, order, ret, rules.plan_return(view, data, done))


def _apply_plan(session: Session, workspace_id: int, order: Order, ret: Return, plan: rules.ReturnPlan) -> None:
    ret.status, ret.kind, ret.order_id = "applied", plan.kind, order.id
    ret.amount, ret.currency, ret.lines = plan.amount, order.currency, plan.lines
    ret.applied_at, ret.error = utcnow(), None
    session.flush()
    OrderRepository(session, workspace_id).add_refund(order.id, plan.amount)
    session.expire(order, ["refunded_total", "updated_at"])
    if order.status != "cancelled":  # a cancelled order left the aggregates already
        record_orders_totals(session, workspace_id, [(order.customer_id, None, -plan.amount, 0)])
    record_event(session, workspace_id, "return.applied", applied_payload(order, ret))


def applied_payload(order: Order, ret: Return) -> dict[str, Any]:
    return {
        "return_id": ret.id, "external_id": ret.external_id, "order_id": order.id,
        "order_external_id": order.external_id, "customer_id": order.customer_id, "amount": str(ret.amount),
        "currency": ret.currency, "kind": ret.kind, "lines": ret.lines, "order_status": order.status,
        "order_total": str(order.total), "refunded_total": str(order.refunded_total),
        "returned_at": ret.returned_at.isoformat(),
    }


def apply_held(session: Session, workspace_id: int, orders: list[Order]) -> None:
    """Apply the returns that waited for these (just recorded) orders, in the orders' transaction.

    A held return that no longer fits its order (over-refund, unknown line) becomes ``rejected`` with the
    reason in ``error``; the order is recorded regardless.
    """
    by_external = {o.external_id: o for o in orders}
    if not by_external:
        return
    for ret in ReturnRepository(session, workspace_id).held_for(list(by_external)):
        order = by_external[ret.order_external_id]
        data = ReturnIn.model_validate(ret.request)
        try:
            with session.begin_nested():
                apply(session, workspace_id, order, ret, data)
        except PatronageError as exc:
            session.refresh(ret)
            ret.status, ret.error = "rejected", exc.detail[:500]
            session.flush()
