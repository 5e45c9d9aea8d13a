"""Products, orders with lines and status history, returns, behavioural events, and the Shopify link.

``content_hash`` columns hold the SHA-256 of the last accepted input for a row (its canonical JSON): a
re-sent identical input is recognised as "unchanged" with one indexed look-up, also in bulk imports.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, Money, UTCDateTime


class Product(WorkspaceScoped):
    __tablename__ = "products"
    __table_args__ = (Index("uq_products_ws_sku", "workspace_id", "sku", unique=True),)

    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(200))
    price: Mapped[Decimal | None] = mapped_column(Money)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(default=True)


class Order(WorkspaceScoped):
    """An order. Money rule: ``total = subtotal - discount_total + shipping_total + other_total
    + tax_total`` (tax left out when ``taxes_included``), checked to the cent on ingestion."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("uq_orders_ws_external_id", "workspace_id", "external_id", unique=True),
        Index("ix_orders_ws_customer_placed", "workspace_id", "customer_id", "placed_at"),
        Index("ix_orders_ws_placed", "workspace_id", "placed_at"),
        Index("ix_orders_ws_updated", "workspace_id", "updated_at"),  # incremental analytics extract
    )

    # The tenant comes with the customer (whose workspace key cascades): a foreign key of its own would
    # cost an integrity-check query per order written, as much as the row itself on an import. That the
    # two agree is the writers' rule, which `patronage doctor` checks (events.tenancy).
    workspace_id: Mapped[int] = mapped_column(BigId, nullable=False)
    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(Money)  # sum of line nets (after line discounts)
    discount_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))  # order-level discounts
    shipping_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    tax_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    other_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))  # tips, duties, fees
    taxes_included: Mapped[bool] = mapped_column(default=False)
    total: Mapped[Decimal] = mapped_column(Money)  # what the customer paid
    refunded_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    channel: Mapped[str | None] = mapped_column(String(20))  # web | app | store | ...
    store: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="paid")
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="api")  # api | import | shopify | demo
    content_hash: Mapped[str | None] = mapped_column(String(64))

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.position"
    )


class OrderLine(WorkspaceScoped):
    __tablename__ = "order_lines"
    __table_args__ = (Index("ix_order_lines_ws_updated", "workspace_id", "updated_at"),)  # analytics extract

    workspace_id: Mapped[int] = mapped_column(BigId, nullable=False)  # the order's (see Order.workspace_id)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    line_id: Mapped[str | None] = mapped_column(String(200))  # the shop's line id, for returns by line
    sku: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Money)
    discount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))  # for the whole line
    # Reward or discount lines never earn points.
    is_reward: Mapped[bool] = mapped_column(default=False)

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderStatusChange(WorkspaceScoped):
    """Every status change after an order was first recorded (its first status is on the order)."""

    __tablename__ = "order_status_changes"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))  # pending | paid | shipped | delayed | delivered | cancelled
    previous_status: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))


class Return(WorkspaceScoped):
    """A refund of a whole order, of some lines, or of an amount.

    ``held`` while its order is unknown (``order_id`` empty); ``applied`` once it counted against the
    order; ``rejected`` when, on its order's arrival, it could not be applied (``error`` says why).
    """

    __tablename__ = "returns"
    __table_args__ = (
        Index("uq_returns_ws_external_id", "workspace_id", "external_id", unique=True),
        Index("ix_returns_ws_order_external", "workspace_id", "order_external_id"),
        Index("ix_returns_ws_updated", "workspace_id", "updated_at"),  # incremental analytics extract
    )

    external_id: Mapped[str] = mapped_column(String(200))
    order_external_id: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="held")  # held | applied | rejected
    kind: Mapped[str] = mapped_column(String(10), default="full")  # full | lines | amount
    amount: Mapped[Decimal] = mapped_column(Money)  # 0 while a full return is held
    currency: Mapped[str | None] = mapped_column(String(3))  # None while held without one
    reason: Mapped[str | None] = mapped_column(String(500))
    returned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # As sent while held; once applied, resolved: [{position, line_id, sku, quantity, amount, is_reward}].
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(String(500))
    request: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # the input, to apply it later
    source: Mapped[str] = mapped_column(String(20), default="api")
    content_hash: Mapped[str | None] = mapped_column(String(64))


class EventType(WorkspaceScoped):
    """A workspace-defined event type and the JSON Schema its properties must satisfy."""

    __tablename__ = "event_types"
    __table_args__ = (Index("uq_event_types_ws_name", "workspace_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    properties_schema: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class BehaviourEvent(WorkspaceScoped):
    """Something a customer did: page_view, app_open, email_open, review_posted, custom types, ..."""

    __tablename__ = "behaviour_events"
    __table_args__ = (
        Index("uq_behaviour_events_ws_external_id", "workspace_id", "external_id", unique=True),
        Index("ix_behaviour_events_ws_customer_at", "workspace_id", "customer_id", "occurred_at"),
        Index("ix_behaviour_events_ws_updated", "workspace_id", "updated_at"),  # incremental analytics extract
    )

    external_id: Mapped[str] = mapped_column(String(200))  # client-generated: the idempotency key
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="api")
    content_hash: Mapped[str | None] = mapped_column(String(64))


class ShopifyShop(WorkspaceScoped):
    """A Shopify store whose webhooks feed this workspace. Webhooks find their workspace by the shop's
    domain, so a domain belongs to one workspace only. The secret signs webhooks (it must be readable
    to verify them, like any HMAC key); the API never returns it."""

    __tablename__ = "shopify_shops"
    __table_args__ = (Index("uq_shopify_shops_domain", "shop_domain", unique=True),)

    shop_domain: Mapped[str] = mapped_column(String(255))
    webhook_secret: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    default_channel: Mapped[str | None] = mapped_column(String(20))
    last_webhook_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ShopifyWebhookReceipt(WorkspaceScoped):
    """One delivered webhook, by Shopify's ``X-Shopify-Webhook-Id``: retries are recognised and skipped."""

    __tablename__ = "shopify_webhook_receipts"
    __table_args__ = (
        Index("uq_shopify_webhook_receipts_ws_webhook", "workspace_id", "webhook_id", unique=True),
    )

    webhook_id: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(20))  # created | updated | unchanged | ignored | rejected
    detail: Mapped[str | None] = mapped_column(String(1000))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
