"""Order rules: idempotent upsert by external id, status changes, and the customer aggregates they move.

Never commits. Domain events, all in the caller's transaction:
``order.recorded`` (new order), ``order.updated`` (a changed re-send), ``order.status_changed``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.service import record_orders_totals
from patronage.customers.single_row_repository import clear_order_totals
from patronage.events import returns as returns_service
from patronage.events import rules
from patronage.events.arrival_repository import Arrival, arrival
from patronage.events.customer_link import customer_for_order, find_customer
from patronage.events.models import Order, OrderStatusChange
from patronage.events.repository import OrderRepository, ProductRepository
from patronage.events.schemas import OrderIn, Outcome, StatusChangeIn, content_hash
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound, field_error
from patronage.kit.jobs import record_event
from patronage.kit.jobs.queue import record_events_bulk
from patronage.workspaces.repository import get_workspace

MONEY_FIELDS = (
    "subtotal", "discount_total", "shipping_total", "tax_total", "other_total", "taxes_included", "total",
)
DETAIL_FIELDS = ("channel", "store", "attributes")


def workspace_currency(session: Session, workspace_id: int) -> str:
    workspace = get_workspace(session, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace.currency


def line_values(
    session: Session, workspace_id: int, data: OrderIn, catalogue: dict[str, tuple[str, str | None]] | None = None
) -> list[dict[str, Any]]:
    """The order's lines as column values; name and category default to the product catalogue's
    (``catalogue``: already looked up, else read here)."""
    if catalogue is None:
        skus = catalogue_skus(data)
        catalogue = ProductRepository(session, workspace_id).catalogue(skus) if skus else {}
    values = []
    for position, line in enumerate(data.lines):
        name, category = catalogue.get(line.sku or "", (None, None))
        values.append({
            "position": position, "line_id": line.line_id, "sku": line.sku,
            "name": line.name if line.name is not None else name,
            "category": line.category if line.category is not None else category,
            "quantity": line.quantity, "unit_price": line.unit_price, "discount": line.discount,
            "is_reward": line.is_reward,
        })
    return values


def catalogue_skus(data: OrderIn) -> list[str]:
    """The skus whose catalogue entry fills in a line's missing name or category."""
    return [line.sku for line in data.lines if line.sku and (line.name is None or line.category is None)]


def recorded_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id, "external_id": order.external_id, "customer_id": order.customer_id,
        "total": str(order.total), "currency": order.currency, "placed_at": order.placed_at.isoformat(),
        "channel": order.channel, "status": order.status, "source": order.source,
    }


def get_order(session: Session, workspace_id: int, external_id: str) -> Order:
    order = OrderRepository(session, workspace_id).by_external_id(external_id)
    if order is None:
        raise NotFound(f"order {external_id!r} not found")
    return order


def upsert_order(
    session: Session, workspace_id: int, data: OrderIn, *, actor: str, source: str = "api"
) -> tuple[Outcome, Order]:
    """Record an order, idempotently by ``external_id``.

    The same input again is ``unchanged`` (no event). A changed input updates what may change after
    creation (lines, money, channel, store, attributes; the status only forward) and is ``updated``.
    """
    digest = content_hash(data)
    # Most orders are new: one statement tells whether this one is, and finds its customer, the workspace's
    # currency and the catalogue entries of its lines; the locking read with the lines only for a re-send.
    known = arrival(
        session, workspace_id, order_external_id=data.external_id,
        customer_external_id=data.customer_external_id, email=data.customer_email,
        want_currency=data.currency is None, skus=catalogue_skus(data),
    )
    if known.order is not None:
        existing = OrderRepository(session, workspace_id).by_external_id(data.external_id, for_update=True)
        if existing is not None:  # else deleted meanwhile (erasure): record it anew
            return _resend(session, workspace_id, existing, data, digest, actor=actor)
    totals = rules.check_order(data)
    return create_order(session, workspace_id, data, known, totals=totals, digest=digest, actor=actor, source=source)


def _resend(
    session: Session, workspace_id: int, existing: Order, data: OrderIn, digest: str, *, actor: str
) -> tuple[Outcome, Order]:
    """An order sent again (``existing`` is locked): ``unchanged`` when the content is the same, else an update."""
    if existing.content_hash == digest:
        return "unchanged", existing
    totals = rules.check_order(data)
    return _update(session, workspace_id, existing, data, totals=totals, digest=digest, actor=actor)


def create_order(
    session: Session, workspace_id: int, data: OrderIn, known: Arrival, *, totals: rules.Totals, digest: str,
    actor: str, source: str,
) -> tuple[Outcome, Order]:
    """Write a new order (the arrival look-up found none) with its customer, aggregates, events and held
    returns. Core statements throughout, no savepoint: a concurrent request recording the same order
    first makes our insert skip, and ours is then answered as a re-send of theirs."""
    currency = data.currency or known.currency
    if currency is None:
        raise NotFound("workspace not found")
    events: list[tuple[str, dict[str, Any]]] = []
    counts = data.status != "cancelled"
    customer_id, created = customer_for_order(
        session, workspace_id, data, known, actor=actor, events=events,
        first_order=(data.placed_at, totals.total) if counts else None,
    )
    values: dict[str, Any] = {
        "workspace_id": workspace_id, "external_id": data.external_id, "customer_id": customer_id,
        "currency": currency, "subtotal": totals.subtotal, "discount_total": data.discount_total,
        "shipping_total": data.shipping_total, "tax_total": data.tax_total, "other_total": data.other_total,
        "taxes_included": data.taxes_included, "total": totals.total, "refunded_total": Decimal(0),
        "channel": data.channel, "store": data.store, "status": data.status, "placed_at": data.placed_at,
        "attributes": data.attributes, "source": source, "content_hash": digest,
    }
    lines = line_values(session, workspace_id, data, known.catalogue)
    repo = OrderRepository(session, workspace_id)
    inserted = repo.insert_new(values, lines)
    if inserted is None:
        # A concurrent request recorded this order first (PostgreSQL): treat ours as a re-send.
        if created:  # ours, but its first order is not this one after all
            clear_order_totals(session, workspace_id, customer_id)
            record_events_bulk(session, workspace_id, events)
        existing = repo.by_external_id(data.external_id, for_update=True)
        if existing is None:
            raise Conflict(f"order {data.external_id!r} is being recorded by another request; send it again")
        return _resend(session, workspace_id, existing, data, digest, actor=actor)
    order = repo.attach_new(values, inserted, lines)
    if counts and not created:
        record_orders_totals(session, workspace_id, [(customer_id, order.placed_at, order.total, 1)])
    events.append(("order.recorded", recorded_payload(order)))
    if not counts:
        events.append(("order.status_changed", status_payload(order, None, None)))
    record_events_bulk(session, workspace_id, events)
    if inserted.held_returns:
        returns_service.apply_held(session, workspace_id, [order])
    return "created", order


def _update(
    session: Session, workspace_id: int, order: Order, data: OrderIn, *, totals: rules.Totals, digest: str,
    actor: str,
) -> tuple[Outcome, Order]:
    _check_immutable(session, workspace_id, order, data)
    wanted: dict[str, Any] = {
        "subtotal": totals.subtotal, "discount_total": data.discount_total, "shipping_total": data.shipping_total,
        "tax_total": data.tax_total, "other_total": data.other_total, "taxes_included": data.taxes_included,
        "total": totals.total, "channel": data.channel, "store": data.store, "attributes": data.attributes,
    }
    changed = [f for f, v in wanted.items() if getattr(order, f) != v]
    new_lines = line_values(session, workspace_id, data)
    if [_line_key(v) for v in new_lines] != [_line_key(_line_dict(line)) for line in order.lines]:
        changed.append("lines")
    if order.status == "cancelled" and set(changed) & {*MONEY_FIELDS, "lines"}:
        raise field_error("total", "the order is cancelled; its lines and amounts can no longer change", code="final")
    if totals.total < order.refunded_total:
        raise field_error("total", f"{totals.total} is less than the {order.refunded_total} already refunded")
    moves = rules.upsert_moves_status(order.status, data.status)
    order.content_hash = digest
    if not changed and not moves:
        session.flush()
        return "unchanged", order
    previous_total = order.total
    for f in changed:
        if f != "lines":
            setattr(order, f, wanted[f])
    if "lines" in changed:
        OrderRepository(session, workspace_id).replace_lines(order, new_lines)
    session.flush()
    if changed:
        delta = order.total - previous_total
        if delta and order.status != "cancelled":
            record_orders_totals(session, workspace_id, [(order.customer_id, None, delta, 0)])
        record_event(session, workspace_id, "order.updated", {
            "order_id": order.id, "external_id": order.external_id, "customer_id": order.customer_id,
            "changed": sorted(changed), "previous_total": str(previous_total), "total": str(order.total),
            "currency": order.currency,
        })
    if moves:
        _set_status(session, workspace_id, order, data.status, at=utcnow(), note=None)
    audit(session, workspace_id=workspace_id, actor=actor, action="order.updated", subject_type="order",
          subject_id=order.id, data={"fields": sorted(changed), "status": order.status})
    return "updated", order


def _check_immutable(session: Session, workspace_id: int, order: Order, data: OrderIn) -> None:
    if data.currency is not None and data.currency != order.currency:
        raise field_error("currency", f"the order was recorded in {order.currency}; it cannot change", code="immutable")
    if data.placed_at != order.placed_at:
        raise field_error("placed_at", "the order's placed_at cannot change once recorded", code="immutable")
    sent = find_customer(
        session, workspace_id, external_id=data.customer_external_id, email=data.customer_email
    )
    if sent is not None and sent != order.customer_id:
        field = "customer_external_id" if data.customer_external_id else "customer_email"
        raise field_error(field, "the order belongs to another customer; it cannot move", code="immutable")


def _line_dict(line: Any) -> dict[str, Any]:
    return {k: getattr(line, k) for k in (
        "position", "line_id", "sku", "name", "category", "quantity", "unit_price", "discount", "is_reward")}


def _line_key(values: dict[str, Any]) -> tuple[Any, ...]:
    return (values["position"], values["line_id"], values["sku"], values["name"], values["category"],
            values["quantity"], Decimal(values["unit_price"]), Decimal(values["discount"]), bool(values["is_reward"]))


# ---- status ------------------------------------------------------------------------------------------
def change_status(
    session: Session, workspace_id: int, external_id: str, data: StatusChangeIn, *, actor: str
) -> tuple[Outcome, Order]:
    """Set an order's status (any move but out of ``cancelled``); the same status again is ``unchanged``."""
    order = OrderRepository(session, workspace_id).by_external_id(external_id, for_update=True)
    if order is None:
        raise NotFound(f"order {external_id!r} not found")
    if not rules.check_status_change(order.status, data.status):
        return "unchanged", order
    _set_status(session, workspace_id, order, data.status, at=data.at or utcnow(), note=data.note)
    audit(session, workspace_id=workspace_id, actor=actor, action="order.status_changed", subject_type="order",
          subject_id=order.id, data={"status": data.status})
    return "updated", order


def _set_status(
    session: Session, workspace_id: int, order: Order, status: str, *, at: datetime, note: str | None
) -> OrderStatusChange:
    previous = order.status
    order.status = status
    change = OrderRepository(session, workspace_id).add_status_change(order.id, status, previous, at, note)
    if status == "cancelled":
        # A cancelled order stops counting: what was not refunded yet leaves the aggregates.
        released = -(order.total - order.refunded_total)
        record_orders_totals(session, workspace_id, [(order.customer_id, None, released, -1)])
    record_event(session, workspace_id, "order.status_changed", status_payload(order, previous, change))
    return change


def status_payload(order: Order, previous: str | None, change: OrderStatusChange | None) -> dict[str, Any]:
    return {
        "order_id": order.id, "external_id": order.external_id, "customer_id": order.customer_id,
        "status": order.status, "previous_status": previous,
        "at": (change.at if change else order.placed_at).isoformat(), "note": change.note if change else None,
        "total": str(order.total), "refunded_total": str(order.refunded_total),
        "remaining": str(order.total - order.refunded_total), "currency": order.currency,
    }


def status_history(session: Session, workspace_id: int, order: Order) -> list[OrderStatusChange]:
    return OrderRepository(session, workspace_id).status_history(order.id)
