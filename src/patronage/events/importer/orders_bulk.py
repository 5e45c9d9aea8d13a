"""The fast path for many orders at once (imports, demo data): set-based, same rules as the API.

One chunk, in the caller's transaction: validate every order with the API's schema and money rule,
look up existing orders by external id (one query), resolve customers in bulk (creating unknown ones
with ``ensure_customers``), allocate ids and insert orders and lines in one driver call each, fold the
customer aggregates into one ``record_orders_totals`` call, and record ``order.recorded`` for each new
order with ``record_events_bulk``. Orders that already exist go through the single-order service, so a
changed order is updated exactly as through the API and an identical one is ``unchanged``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.customers.resolution import find_customer_ids
from patronage.customers.service import ensure_customers, record_orders_totals
from patronage.events import orders as order_service
from patronage.events import returns as return_service
from patronage.events import rules
from patronage.events.models import Order, OrderLine
from patronage.events.repository import OrderRepository, ProductRepository, ReturnRepository
from patronage.events.schemas import OrderIn, content_hash
from patronage.kit.clock import utcnow
from patronage.kit.errors import PatronageError
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.upsert import insert_rows, insert_with_ids

ORDER_COLUMNS = (
    "workspace_id", "external_id", "customer_id", "currency", "subtotal", "discount_total", "shipping_total",
    "tax_total", "other_total", "taxes_included", "total", "refunded_total", "channel", "store", "status",
    "placed_at", "attributes", "source", "content_hash", "created_at", "updated_at",
)
LINE_COLUMNS = (
    "workspace_id", "order_id", "position", "line_id", "sku", "name", "category", "quantity", "unit_price",
    "discount", "is_reward", "created_at", "updated_at",
)
CUSTOMER_CACHE_LIMIT = 500_000
ZERO = Decimal(0)


@dataclass
class Outcome:
    """Per item of a chunk, in input order: ``created`` / ``updated`` / ``unchanged`` or an error."""

    status: str
    error: PatronageError | None = None


@dataclass
class BulkContext:
    """What one import run remembers across chunks (bounded): customer ids, the workspace currency."""

    workspace_id: int
    currency: str
    actor: str
    source: str = "import"
    customers: dict[str, int] = field(default_factory=dict)

    def remember(self, found: dict[str, int]) -> None:
        if len(self.customers) + len(found) > CUSTOMER_CACHE_LIMIT:
            self.customers.clear()
        self.customers.update(found)


def customers_for(session: Session, ctx: BulkContext, external_ids: Sequence[str]) -> dict[str, int]:
    wanted = [e for e in dict.fromkeys(external_ids) if e not in ctx.customers]
    if wanted:
        found = find_customer_ids(session, ctx.workspace_id, [("external_id", e) for e in wanted])
        known = {e: found[("external_id", e)] for e in wanted if ("external_id", e) in found}
        missing = [e for e in wanted if e not in known]
        if missing:
            known.update(ensure_customers(session, ctx.workspace_id, missing))
        ctx.remember(known)
    return {e: ctx.customers[e] for e in external_ids}


def _single(session: Session, ctx: BulkContext, order: OrderIn) -> Outcome:
    try:
        with session.begin_nested():
            status, _ = order_service.upsert_order(
                session, ctx.workspace_id, order, actor=ctx.actor, source=ctx.source
            )
        return Outcome(status)
    except PatronageError as exc:
        return Outcome("error", exc)


def ingest_orders(session: Session, ctx: BulkContext, orders: Sequence[OrderIn]) -> list[Outcome]:
    """Record a chunk of validated orders; returns one outcome per order, in order."""
    outcomes: list[Outcome | None] = [None] * len(orders)
    digests: list[str] = []
    totals: list[rules.Totals | None] = []
    for i, order in enumerate(orders):
        digests.append(content_hash(order))
        try:
            totals.append(rules.check_order(order))
        except PatronageError as exc:
            totals.append(None)
            outcomes[i] = Outcome("error", exc)
    known = OrderRepository(session, ctx.workspace_id).fingerprints([o.external_id for o in orders])
    fresh: list[int] = []
    later: list[int] = []  # existing orders, and repeats of an external id within the chunk
    seen: set[str] = set()
    for i, order in enumerate(orders):
        if outcomes[i] is not None:
            continue
        existing = known.get(order.external_id)
        if order.external_id in seen or existing is not None:
            if existing is not None and existing[1] == digests[i] and order.external_id not in seen:
                outcomes[i] = Outcome("unchanged")
            else:
                later.append(i)
            continue
        seen.add(order.external_id)
        if order.customer_external_id is None:
            later.append(i)  # found by email only: the single path resolves it
            continue
        fresh.append(i)
    if fresh:
        _insert_new(session, ctx, [orders[i] for i in fresh], [digests[i] for i in fresh],
                    [totals[i] for i in fresh])
        for i in fresh:
            outcomes[i] = Outcome("created")
    for i in later:
        outcomes[i] = _single(session, ctx, orders[i])
    return [o if o is not None else Outcome("error", PatronageError("not processed")) for o in outcomes]


def _insert_new(
    session: Session, ctx: BulkContext, orders: list[OrderIn], digests: list[str], totals: list[Any]
) -> None:
    ws = ctx.workspace_id
    customer_of = customers_for(session, ctx, [o.customer_external_id or "" for o in orders])
    lines_in = [(o, line) for o in orders for line in o.lines]
    skus = [line.sku for _, line in lines_in if line.sku and (line.name is None or line.category is None)]
    catalogue = ProductRepository(session, ws).catalogue(skus) if skus else {}
    now = utcnow()
    rows = []
    for order, digest, total in zip(orders, digests, totals, strict=True):
        rows.append((
            ws, order.external_id, customer_of[order.customer_external_id or ""], order.currency or ctx.currency,
            total.subtotal, order.discount_total, order.shipping_total, order.tax_total, order.other_total,
            order.taxes_included, total.total, ZERO, order.channel, order.store, order.status, order.placed_at,
            order.attributes, ctx.source, digest, now, now,
        ))
    order_table: Table = Order.__table__  # type: ignore[assignment]
    ids = insert_with_ids(session, order_table, ORDER_COLUMNS, rows)
    line_rows = []
    for order_id, order in zip(ids, orders, strict=True):
        for position, line in enumerate(order.lines):
            name, category = line.name, line.category
            if line.sku and (name is None or category is None):
                known_name, known_category = catalogue.get(line.sku, (None, None))
                name = name if name is not None else known_name
                category = category if category is not None else known_category
            line_rows.append((
                ws, order_id, position, line.line_id, line.sku, name, category, line.quantity, line.unit_price,
                line.discount, line.is_reward, now, now,
            ))
    line_table: Table = OrderLine.__table__  # type: ignore[assignment]
    insert_rows(session, line_table, LINE_COLUMNS, line_rows)
    record_orders_totals(session, ws, [
        (row[2], row[15], row[10], 1) for row in rows if row[14] != "cancelled"
    ])
    events: list[tuple[str, dict[str, Any]]] = []
    for order_id, row in zip(ids, rows, strict=True):
        events.append(("order.recorded", _payload(order_id, row)))
        if row[14] == "cancelled":
            events.append(("order.status_changed", _cancelled_payload(order_id, row)))
    record_events_bulk(session, ws, events)
    _apply_held_returns(session, ws, [o.external_id for o in orders])


def _payload(order_id: int, row: tuple[Any, ...]) -> dict[str, Any]:
    placed_at: datetime = row[15]
    return {
        "order_id": order_id, "external_id": row[1], "customer_id": row[2], "total": str(row[10]),
        "currency": row[3], "placed_at": placed_at.isoformat(), "channel": row[12], "status": row[14],
        "source": row[17],
    }


def _cancelled_payload(order_id: int, row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "order_id": order_id, "external_id": row[1], "customer_id": row[2], "status": "cancelled",
        "previous_status": None, "at": row[15].isoformat(), "note": None, "total": str(row[10]),
        "refunded_total": "0.0000", "remaining": str(row[10]), "currency": row[3],
    }


def _apply_held_returns(session: Session, workspace_id: int, external_ids: list[str]) -> None:
    held = ReturnRepository(session, workspace_id).held_for(external_ids)
    if not held:
        return
    repo = OrderRepository(session, workspace_id)
    waiting = {r.order_external_id for r in held}
    orders = [o for o in (repo.by_external_id(e, for_update=True) for e in sorted(waiting)) if o is not None]
    return_service.apply_held(session, workspace_id, orders)

