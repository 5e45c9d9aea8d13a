"""Queries for products, orders, returns, event types and behavioural events, scoped by workspace.

The one unscoped query, ``find_shop_by_domain``, finds the tenant of an incoming Shopify webhook (like a
token look-up finds the tenant of an API key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, exists, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

from patronage.events.models import (
    BehaviourEvent,
    EventType,
    Order,
    OrderLine,
    OrderStatusChange,
    Product,
    Return,
    ShopifyShop,
    ShopifyWebhookReceipt,
)
from patronage.kit.clock import utcnow
from patronage.kit.insert_once import InsertOnce
from patronage.kit.repository import WorkspaceRepository
from patronage.kit.upsert import matching_batches

CHUNK = 500
ORDERS = cast(Table, Order.__table__)
ORDER_LINES = cast(Table, OrderLine.__table__)
# Held returns waiting for the order being inserted: asked in the INSERT's RETURNING, the moment the order
# row appears, which spares a look-up per order when none wait (nearly always).
_HELD_RETURNS = exists().where(
    Return.workspace_id == bindparam("h_ws"), Return.order_external_id == bindparam("h_order"),
    Return.status == "held",
)
_INSERT_ORDER = InsertOnce(
    ORDERS, conflict=("workspace_id", "external_id"), returning=(ORDERS.c.id, _HELD_RETURNS.label("held_returns"))
)
_INSERT_LINES = insert(ORDER_LINES).returning(ORDER_LINES.c.id, sort_by_parameter_order=True)
_INSERT_ORDERS = insert(ORDERS).returning(ORDERS.c.id, sort_by_parameter_order=True)


class NewOrder(NamedTuple):
    id: int
    at: datetime  # created_at = updated_at
    held_returns: bool
    line_ids: list[int]


class ProductRepository(WorkspaceRepository[Product]):
    model = Product

    def by_sku(self, sku: str) -> Product | None:
        return self.session.scalars(self.select().where(Product.sku == sku)).one_or_none()

    def catalogue(self, skus: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """sku -> (name, category) for the known ones."""
        found: dict[str, tuple[str, str | None]] = {}
        for matching in matching_batches(self.session, Product.sku, skus):
            stmt = select(Product.sku, Product.name, Product.category).where(
                Product.workspace_id == self.workspace_id, matching
            )
            for sku, name, category in self.session.execute(stmt):
                found[sku] = (name, category)
        return found

    def listing(self, *, category: str | None, active: bool | None) -> Select[Product]:
        stmt = self.select()
        if category is not None:
            stmt = stmt.where(Product.category == category)
        if active is not None:
            stmt = stmt.where(Product.active.is_(active))
        return stmt


class OrderRepository(WorkspaceRepository[Order]):
    model = Order

    def by_external_id(self, external_id: str, *, for_update: bool = False) -> Order | None:
        stmt = self.select().where(Order.external_id == external_id).options(selectinload(Order.lines))
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def fingerprints(self, external_ids: Sequence[str]) -> dict[str, tuple[int, str | None]]:
        """external_id -> (order id, content hash) for the known ones."""
        found: dict[str, tuple[int, str | None]] = {}
        for matching in matching_batches(self.session, Order.external_id, external_ids):
            stmt = select(Order.external_id, Order.id, Order.content_hash).where(
                Order.workspace_id == self.workspace_id, matching
            )
            for external_id, order_id, digest in self.session.execute(stmt):
                found[external_id] = (order_id, digest)
        return found

    def summaries(self, ranges: Sequence[Sequence[int]]) -> list[Any]:
        """id, customer_id, placed_at, total, status of the orders whose ids lie in ``ranges`` (inclusive
        [first, last] pairs, as batch events carry them), in id order."""
        c = Order.__table__.c
        columns = (c.id, c.customer_id, c.placed_at, c.total, c.status)
        wide = [r for r in ranges if r[1] - r[0] >= CHUNK]
        narrow = [i for first, last in ranges if last - first < CHUNK for i in range(first, last + 1)]
        found: list[Any] = []
        for first, last in wide:
            found.extend(self.session.execute(
                select(*columns).where(c.workspace_id == self.workspace_id, c.id.between(first, last))))
        for start in range(0, len(narrow), CHUNK):
            found.extend(self.session.execute(
                select(*columns).where(c.workspace_id == self.workspace_id, c.id.in_(narrow[start:start + CHUNK]))))
        return sorted(found, key=lambda r: r.id)

    def listing(
        self, *, customer_id: int | None, status: str | None, placed_from: datetime | None,
        placed_to: datetime | None,
    ) -> Select[Order]:
        stmt = self.select().options(selectinload(Order.lines))
        if customer_id is not None:
            stmt = stmt.where(Order.customer_id == customer_id)
        if status is not None:
            stmt = stmt.where(Order.status == status)
        if placed_from is not None:
            stmt = stmt.where(Order.placed_at >= placed_from)
        if placed_to is not None:
            stmt = stmt.where(Order.placed_at < placed_to)
        return stmt

    def add_refund(self, order_id: int, amount: Decimal) -> None:
        """``refunded_total += amount``: relative, never a value read earlier."""
        self.session.execute(
            update(Order)
            .where(Order.workspace_id == self.workspace_id, Order.id == order_id)
            .values(refunded_total=Order.refunded_total + amount, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    def insert_new(self, values: dict[str, Any], lines: Sequence[dict[str, Any]]) -> NewOrder | None:
        """Insert an order and its lines with Core statements; None when an order with this external id
        exists (a concurrent request's, committed; nothing written). Whether held returns wait for the order
        comes back with the insert (one statement, so their look-up costs no round trip of its own)."""
        now = utcnow()
        row = _INSERT_ORDER(self.session, {
            **values, "workspace_id": self.workspace_id, "created_at": now, "updated_at": now,
            "h_ws": self.workspace_id, "h_order": values["external_id"],
        })
        if row is None:
            return None
        order_id = int(row.id)
        line_ids: list[int] = []
        if lines:
            rows = [{**line, "workspace_id": self.workspace_id, "order_id": order_id, "created_at": now,
                     "updated_at": now} for line in lines]
            line_ids = [int(i) for i in self.session.execute(_INSERT_LINES, rows).scalars()]
        return NewOrder(order_id, now, bool(row.held_returns), line_ids)

    def insert_new_many(
        self, orders: Sequence[dict[str, Any]], lines: Sequence[Sequence[dict[str, Any]]]
    ) -> list[NewOrder]:
        """``insert_new`` for many orders known to be new: one multi-row INSERT for the orders, one for
        their lines. An order recorded meanwhile by another transaction fails the statement (the caller's
        batch falls back to single writes, which handle the race). ``held_returns`` is not asked (False)."""
        now = utcnow()
        rows = [{**values, "workspace_id": self.workspace_id, "created_at": now, "updated_at": now}
                for values in orders]
        order_ids = [int(i) for i in self.session.execute(_INSERT_ORDERS, rows).scalars()]
        line_rows = [{**line, "workspace_id": self.workspace_id, "order_id": order_id, "created_at": now,
                      "updated_at": now} for order_id, order_lines in zip(order_ids, lines, strict=True)
                     for line in order_lines]
        line_ids = [int(i) for i in self.session.execute(_INSERT_LINES, line_rows).scalars()] if line_rows else []
        found: list[NewOrder] = []
        for order_id, order_lines in zip(order_ids, lines, strict=True):
            found.append(NewOrder(order_id, now, False, line_ids[:len(order_lines)]))
            line_ids = line_ids[len(order_lines):]
        return found

    def attach_new(self, values: dict[str, Any], new: NewOrder, lines: Sequence[dict[str, Any]]) -> Order:
        """The order ``insert_new`` wrote, as a persistent ORM object of the session (no query, no flush):
        callers and the response read it like a loaded one."""
        order_lines = [
            OrderLine(id=line_id, workspace_id=self.workspace_id, order_id=new.id, created_at=new.at,
                      updated_at=new.at, **line)
            for line_id, line in zip(new.line_ids, lines, strict=True)
        ]
        order = Order(id=new.id, created_at=new.at, updated_at=new.at, lines=order_lines,
                      **{**values, "workspace_id": self.workspace_id})
        for obj in (*order_lines, order):
            make_transient_to_detached(obj)
        self.session.add(order)
        return order

    def replace_lines(self, order: Order, lines: list[dict[str, Any]]) -> None:
        order.lines.clear()
        self.session.flush()
        for values in lines:
            order.lines.append(OrderLine(workspace_id=self.workspace_id, **values))

    def status_history(self, order_id: int) -> list[OrderStatusChange]:
        stmt = (
            select(OrderStatusChange)
            .where(OrderStatusChange.workspace_id == self.workspace_id, OrderStatusChange.order_id == order_id)
            .order_by(OrderStatusChange.at, OrderStatusChange.id)
        )
        return list(self.session.scalars(stmt))

    def add_status_change(
        self, order_id: int, status: str, previous: str | None, at: datetime, note: str | None
    ) -> OrderStatusChange:
        change = OrderStatusChange(
            workspace_id=self.workspace_id, order_id=order_id, status=status, previous_status=previous,
            at=at, note=note,
        )
        self.session.add(change)
        self.session.flush()
        return change


class ReturnRepository(WorkspaceRepository[Return]):
    model = Return

    def by_external_id(self, external_id: str, *, for_update: bool = False) -> Return | None:
        stmt = self.select().where(Return.external_id == external_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def for_order(self, order_id: int) -> list[Return]:
        stmt = self.select().where(Return.order_id == order_id).order_by(Return.returned_at, Return.id)
        return list(self.session.scalars(stmt))

    def applied_lines(self, order_id: int) -> list[list[dict[str, Any]]]:
        stmt = select(Return.lines).where(
            Return.workspace_id == self.workspace_id, Return.order_id == order_id, Return.status == "applied"
        )
        return [list(lines or []) for lines in self.session.scalars(stmt)]

    def any_held(self) -> bool:
        """Whether any return waits for its order (bulk imports skip the per-chunk look-up otherwise)."""
        stmt = select(Return.id).where(Return.workspace_id == self.workspace_id, Return.status == "held").limit(1)
        return self.session.execute(stmt).first() is not None

    def held_for(self, order_external_ids: Sequence[str]) -> list[Return]:
        """Held returns waiting for any of these orders, oldest first, locked."""
        found: list[Return] = []
        for matching in matching_batches(self.session, Return.order_external_id, order_external_ids):
            stmt = (
                self.select()
                .where(Return.status == "held", matching)
                .order_by(Return.id)
                .with_for_update()
            )
            found.extend(self.session.scalars(stmt))
        return sorted(found, key=lambda r: (r.returned_at, r.id))

    def fingerprints(self, external_ids: Sequence[str]) -> dict[str, tuple[int, str | None, str]]:
        """external_id -> (return id, content hash, status)."""
        found: dict[str, tuple[int, str | None, str]] = {}
        for matching in matching_batches(self.session, Return.external_id, external_ids):
            stmt = select(Return.external_id, Return.id, Return.content_hash, Return.status).where(
                Return.workspace_id == self.workspace_id, matching
            )
            for external_id, return_id, digest, status in self.session.execute(stmt):
                found[external_id] = (return_id, digest, status)
        return found

    def listing(self, *, status: str | None, order_external_id: str | None) -> Select[Return]:
        stmt = self.select()
        if status is not None:
            stmt = stmt.where(Return.status == status)
        if order_external_id is not None:
            stmt = stmt.where(Return.order_external_id == order_external_id)
        return stmt


class EventTypeRepository(WorkspaceRepository[EventType]):
    model = EventType

    def by_name(self, name: str) -> EventType | None:
        return self.session.scalars(self.select().where(EventType.name == name)).one_or_none()

    def by_names(self, names: Sequence[str]) -> dict[str, EventType]:
        found: dict[str, EventType] = {}
        for matching in matching_batches(self.session, EventType.name, names):
            for event_type in self.session.scalars(self.select().where(matching)):
                found[event_type.name] = event_type
        return found

    def all(self) -> list[EventType]:
        return list(self.session.scalars(self.select().order_by(EventType.name)))


class BehaviourEventRepository(WorkspaceRepository[BehaviourEvent]):
    model = BehaviourEvent

    def by_external_id(self, external_id: str) -> BehaviourEvent | None:
        return self.session.scalars(self.select().where(BehaviourEvent.external_id == external_id)).one_or_none()

    def fingerprints(self, external_ids: Sequence[str]) -> dict[str, tuple[int, str | None]]:
        found: dict[str, tuple[int, str | None]] = {}
        for matching in matching_batches(self.session, BehaviourEvent.external_id, external_ids):
            stmt = select(BehaviourEvent.external_id, BehaviourEvent.id, BehaviourEvent.content_hash).where(
                BehaviourEvent.workspace_id == self.workspace_id, matching
            )
            for external_id, event_id, digest in self.session.execute(stmt):
                found[external_id] = (event_id, digest)
        return found

    def listing(
        self, *, customer_id: int | None, type_: str | None, since: datetime | None
    ) -> Select[BehaviourEvent]:
        stmt = self.select()
        if customer_id is not None:
            stmt = stmt.where(BehaviourEvent.customer_id == customer_id)
        if type_ is not None:
            stmt = stmt.where(BehaviourEvent.type == type_)
        if since is not None:
            stmt = stmt.where(BehaviourEvent.occurred_at >= since)
        return stmt


class ShopifyShopRepository(WorkspaceRepository[ShopifyShop]):
    model = ShopifyShop

    def by_domain(self, shop_domain: str) -> ShopifyShop | None:
        return self.session.scalars(self.select().where(ShopifyShop.shop_domain == shop_domain)).one_or_none()

    def all(self) -> list[ShopifyShop]:
        return list(self.session.scalars(self.select().order_by(ShopifyShop.shop_domain)))


class ShopifyReceiptRepository(WorkspaceRepository[ShopifyWebhookReceipt]):
    model = ShopifyWebhookReceipt

    def by_webhook_id(self, webhook_id: str) -> ShopifyWebhookReceipt | None:
        stmt = self.select().where(ShopifyWebhookReceipt.webhook_id == webhook_id)
        return self.session.scalars(stmt).one_or_none()

    def listing(self, *, outcome: str | None) -> Select[ShopifyWebhookReceipt]:
        stmt = self.select()
        if outcome is not None:
            stmt = stmt.where(ShopifyWebhookReceipt.outcome == outcome)
        return stmt


def find_shop_by_domain(session: Session, shop_domain: str) -> ShopifyShop | None:
    """The shop (and so the workspace) a webhook comes from. Unscoped on purpose: it finds the tenant."""
    return session.scalars(select(ShopifyShop).where(ShopifyShop.shop_domain == shop_domain)).one_or_none()
