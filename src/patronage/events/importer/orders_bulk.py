"""The fast path for many orders at once (imports, demo data): set-based, same rules as the API.

One chunk, in the caller's transaction: orders arrive validated and hashed (``prepare.py``); existing
orders are found by external id (one query), customers resolved in bulk (unknown ones created with
``ensure_customers``), orders and lines inserted in one driver call each (``kit.upsert``), the customer
aggregates folded into one ``record_orders_totals`` call, and ONE ``orders.imported`` domain event names
the chunk's new orders (id ranges) for subscribers that work set-based - instead of an ``order.recorded``
(and a job per subscriber) per order. Orders that already exist, repeats within the chunk and orders
identified by e-mail only go through the single-order service, exactly as through the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.customers.service import ensure_customers, record_new_orders_totals, record_orders_totals
from patronage.events import orders as order_service
from patronage.events import returns as return_service
from patronage.events.arrival_lock import lock_workspace_arrivals
from patronage.events.imported import ORDERS_IMPORTED
from patronage.events.importer.packed import (
    LINE_SKU,
    PACKED_LINE_COLUMNS,
    PACKED_ORDER_COLUMNS,
    WRITER_LINE_COLUMNS,
    WRITER_ORDER_COLUMNS,
    OrderCodec,
    Packed,
    filled_from_catalogue,
    wants_catalogue,
)
from patronage.events.importer.prepare import PreparedOrder, from_model
from patronage.events.models import Order, OrderLine
from patronage.events.repository import OrderRepository, ProductRepository, ReturnRepository
from patronage.events.schemas import OrderIn
from patronage.kit.clock import utcnow
from patronage.kit.errors import PatronageError
from patronage.kit.idranges import to_ranges
from patronage.kit.jobs import record_event
from patronage.kit.upsert import allocate_ids, dialect_name, insert_rows, refresh_statistics

# The bulk insert's columns: the writer's own, then what a packed order carries (``packed.py``).
ORDER_COLUMNS = ("id", "customer_id", *WRITER_ORDER_COLUMNS, *PACKED_ORDER_COLUMNS)
LINE_COLUMNS = ("order_id", "position", *WRITER_LINE_COLUMNS, *PACKED_LINE_COLUMNS)
CUSTOMER_CACHE_LIMIT = 500_000
MAX_RANGES = 50  # more id ranges than this in one chunk: aggregates folded from the rows instead


@dataclass
class Outcome:
    """Per item of a chunk, in input order: ``created`` / ``updated`` / ``unchanged`` or an error."""

    status: str
    error: PatronageError | None = None


@dataclass
class BulkContext:
    """What one import run remembers across chunks (bounded): customer ids, the workspace currency.

    ``earn``: whether the imported orders earn points (carried by ``orders.imported``; see
    docs/ingestion.md, "Bulk import and the loyalty engine").
    """

    workspace_id: int
    currency: str
    actor: str
    source: str = "import"
    customers: dict[str, int] = field(default_factory=dict)
    earn: bool = True
    analyzed: bool = False  # statistics refreshed once in this run, inside the first chunk
    codecs: dict[str, OrderCodec] = field(default_factory=dict)

    def remember(self, found: dict[str, int]) -> None:
        if len(self.customers) + len(found) > CUSTOMER_CACHE_LIMIT:
            self.customers.clear()
        self.customers.update(found)

    def codec(self, dialect: str) -> OrderCodec:
        if dialect not in self.codecs:
            self.codecs[dialect] = OrderCodec(dialect, self.currency)
        return self.codecs[dialect]

    def batch(self) -> dict[str, Any]:
        """What every batch event of this run carries."""
        return {"source": self.source, "earn": self.earn}


def customers_for(session: Session, ctx: BulkContext, external_ids: Sequence[str]) -> dict[str, int]:
    wanted = [e for e in dict.fromkeys(external_ids) if e not in ctx.customers]
    if wanted:  # ensure_customers looks them up (merged ones to their survivor) and creates the rest
        ctx.remember(ensure_customers(session, ctx.workspace_id, wanted, batch=ctx.batch()))
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


def ingest_orders(
    session: Session, ctx: BulkContext, orders: Sequence[OrderIn | PreparedOrder | Packed]
) -> list[Outcome]:
    """Record a chunk of validated orders; returns one outcome per order, in order."""
    lock_workspace_arrivals(session, ctx.workspace_id)  # before any row lock: see arrival_lock.py
    codec = ctx.codec(dialect_name(session))
    outcomes: list[Outcome | None] = [None] * len(orders)
    packed: list[Packed | None] = []
    for i, order in enumerate(orders):
        try:
            packed.append(_packed(codec, order))
        except PatronageError as exc:  # an OrderIn that breaks the money rule
            packed.append(None)
            outcomes[i] = Outcome("error", exc)
    known = OrderRepository(session, ctx.workspace_id).fingerprints([p.external_id for p in packed if p])
    fresh: list[Packed] = []
    fresh_at: list[int] = []
    later: list[int] = []  # existing orders, repeats of an external id within the chunk, e-mail only
    seen: set[str] = set()
    for i, p in enumerate(packed):
        if p is None:
            continue
        key = p.external_id
        existing = known.get(key)
        if key in seen or existing is not None:
            if existing is not None and existing[1] == p.digest and key not in seen:
                outcomes[i] = Outcome("unchanged")
            else:
                later.append(i)
            continue
        seen.add(key)
        if p.customer is None:
            later.append(i)  # found by e-mail only: the single path resolves it
            continue
        fresh.append(p)
        fresh_at.append(i)
    if fresh:
        _insert_new(session, ctx, codec, fresh)
        for i in fresh_at:
            outcomes[i] = Outcome("created")
    for i in later:
        item, p = orders[i], packed[i]
        assert p is not None
        outcomes[i] = _single(session, ctx, item if isinstance(item, OrderIn) else p.model())
    return [o if o is not None else Outcome("error", PatronageError("not processed")) for o in outcomes]


def _packed(codec: OrderCodec, order: OrderIn | PreparedOrder | Packed) -> Packed:
    if isinstance(order, Packed):
        return order
    return codec.pack(order if isinstance(order, PreparedOrder) else from_model(order))


def _insert_new(session: Session, ctx: BulkContext, codec: OrderCodec, orders: list[Packed]) -> None:
    ws = ctx.workspace_id
    customer_of = customers_for(session, ctx, [p.customer or "" for p in orders])
    skus = [line[LINE_SKU] for p in orders if p.needs_catalogue for line in p.lines if wants_catalogue(line)]
    catalogue = ProductRepository(session, ws).catalogue(skus) if skus else {}
    now = utcnow()
    order_table: Table = Order.__table__  # type: ignore[assignment]
    ids = allocate_ids(session, order_table, len(orders))
    writer = codec.writer_order_values(ws, ctx.source, now)
    rows = [(i, customer_of[p.customer or ""], *writer, *p.row) for i, p in zip(ids, orders, strict=True)]
    insert_rows(session, order_table, ORDER_COLUMNS, rows, encoded=True)
    writer = codec.writer_line_values(ws, now)
    line_rows = []
    for order_id, p in zip(ids, orders, strict=True):
        lines = [filled_from_catalogue(line, catalogue) for line in p.lines] if p.needs_catalogue else p.lines
        for position, line in enumerate(lines):
            line_rows.append((order_id, position, *writer, *line))
    line_table: Table = OrderLine.__table__  # type: ignore[assignment]
    insert_rows(session, line_table, LINE_COLUMNS, line_rows, encoded=True)
    ranges = to_ranges(ids)
    if not ctx.analyzed:
        # The set-based UPDATE below joins the new orders to their customers: the planner must know
        # how big both tables are now (PostgreSQL; rows this transaction wrote count too).
        refresh_statistics(session, [order_table, cast(Table, Customer.__table__)])
        ctx.analyzed = True
    if len(ranges) <= MAX_RANGES:
        record_new_orders_totals(session, ws, ranges)  # one UPDATE ... FROM over the new orders
    else:  # ids scattered by concurrent writers (PostgreSQL): fold the rows just written instead
        summaries = OrderRepository(session, ws).summaries(ranges)
        record_orders_totals(session, ws, [
            (row.customer_id, row.placed_at, row.total, 1) for row in summaries if row.status != "cancelled"])
    record_event(session, ws, ORDERS_IMPORTED, {**ctx.batch(), "order_ids": ranges, "count": len(ids)})
    _apply_held_returns(session, ws, [p.external_id for p in orders])


def _apply_held_returns(session: Session, workspace_id: int, external_ids: list[str]) -> None:
    returns = ReturnRepository(session, workspace_id)
    if not returns.any_held():
        return
    held = returns.held_for(external_ids)
    if not held:
        return
    repo = OrderRepository(session, workspace_id)
    waiting = {r.order_external_id for r in held}
    orders = [o for o in (repo.by_external_id(e, for_update=True) for e in sorted(waiting)) if o is not None]
    return_service.apply_held(session, workspace_id, orders)
