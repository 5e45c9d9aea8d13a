"""The analytics store's tables: what the extract copies from the operational database, column by column.

``TABLES`` are copied incrementally (each select starts with the row's id and ``updated_at``, which the
extract's watermarks follow); ``SIDE_TABLES`` are small and copied whole on every refresh, from the
providers in :mod:`patronage.analytics.sources`. A column's kind says how its values become the store's
(``_DUCK_TYPES``); a ``DNUM`` is a local day number derived from an instant (its ``source`` label).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from patronage.analytics import sources
from patronage.customers.models import Customer
from patronage.events.models import BehaviourEvent, Order, OrderLine, Return

AnySelect = Select[*tuple[Any, ...]]

# Column kinds: how a Python value becomes an Arrow value in the store.
INT, FLOAT, TEXT, BOOL, TS, DNUM = "int", "float", "text", "bool", "ts", "dnum"
_DUCK_TYPES = {INT: "BIGINT", FLOAT: "DOUBLE", TEXT: "VARCHAR", BOOL: "BOOLEAN", TS: "TIMESTAMP", DNUM: "INTEGER"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    source: str | None = None  # the select's column label when it differs (a DNUM derived from a time)


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    build: Callable[[int], AnySelect]  # the workspace's rows; selects id and updated_at first
    id_column: Any = None
    updated_column: Any = None
    key: tuple[str, ...] = ("id",)

    @property
    def incremental(self) -> bool:
        return self.id_column is not None

    def ddl(self) -> str:
        cols = ", ".join(f"{c.name} {_DUCK_TYPES[c.kind]}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols}, PRIMARY KEY ({', '.join(self.key)}))"


def _customers(ws: int) -> AnySelect:
    c = Customer
    return select(
        c.id,
        c.updated_at,
        c.acquisition_channel,
        c.lifecycle_stage,
        c.merged_into_id,
        c.erased_at,
        c.created_at.label("created"),
    ).where(c.workspace_id == ws)


def _orders(ws: int) -> AnySelect:
    o = Order
    return select(
        o.id,
        o.updated_at,
        o.customer_id,
        o.placed_at,
        (o.total - o.refunded_total).label("revenue"),
        o.total,
        o.status,
        o.channel,
        o.placed_at.label("placed"),
    ).where(o.workspace_id == ws)


def _lines(ws: int) -> AnySelect:
    ln = OrderLine
    return select(
        ln.id,
        ln.updated_at,
        ln.order_id,
        ln.sku,
        ln.category,
        ln.quantity,
        (ln.unit_price * ln.quantity - ln.discount).label("amount"),
        ln.is_reward,
    ).where(ln.workspace_id == ws)


def _returns(ws: int) -> AnySelect:
    r = Return
    return select(r.id, r.updated_at, r.order_id, r.amount, r.status, r.returned_at.label("returned")).where(
        r.workspace_id == ws
    )


def _events(ws: int) -> AnySelect:
    e = BehaviourEvent
    return select(e.id, e.updated_at, e.customer_id, e.type, e.occurred_at.label("occurred")).where(
        e.workspace_id == ws
    )


ID, UPDATED = Column("id", INT), Column("updated_at", TS)
TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "customers",
        (
            ID,
            UPDATED,
            Column("acquisition_channel", TEXT),
            Column("lifecycle_stage", TEXT),
            Column("merged_into_id", INT),
            Column("erased_at", TS),
            Column("created_dnum", DNUM, "created"),
        ),
        _customers,
        Customer.id,
        Customer.updated_at,
    ),
    TableSpec(
        "orders",
        (
            ID,
            UPDATED,
            Column("customer_id", INT),
            Column("placed_at", TS),
            Column("revenue", FLOAT),
            Column("total", FLOAT),
            Column("status", TEXT),
            Column("channel", TEXT),
            Column("dnum", DNUM, "placed"),
        ),
        _orders,
        Order.id,
        Order.updated_at,
    ),
    TableSpec(
        "order_lines",
        (
            ID,
            UPDATED,
            Column("order_id", INT),
            Column("sku", TEXT),
            Column("category", TEXT),
            Column("quantity", INT),
            Column("amount", FLOAT),
            Column("is_reward", BOOL),
        ),
        _lines,
        OrderLine.id,
        OrderLine.updated_at,
    ),
    TableSpec(
        "returns",
        (
            ID,
            UPDATED,
            Column("order_id", INT),
            Column("amount", FLOAT),
            Column("status", TEXT),
            Column("dnum", DNUM, "returned"),
        ),
        _returns,
        Return.id,
        Return.updated_at,
    ),
    TableSpec(
        "events",
        (ID, UPDATED, Column("customer_id", INT), Column("type", TEXT), Column("dnum", DNUM, "occurred")),
        _events,
        BehaviourEvent.id,
        BehaviourEvent.updated_at,
    ),
)

# Copied whole on every refresh (from analytics.sources providers).
SIDE_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "members",
        (Column("customer_id", INT), Column("joined_dnum", DNUM, "joined_at"), Column("tier", TEXT)),
        sources.members,
        key=("customer_id",),
    ),
    TableSpec(
        "redemptions",
        (Column("id", INT), Column("customer_id", INT), Column("dnum", DNUM, "redeemed_at"), Column("value", FLOAT)),
        sources.redemptions,
    ),
    TableSpec(
        "segment_members",
        (Column("segment_id", INT), Column("customer_id", INT)),
        sources.segment_members,
        key=("segment_id", "customer_id"),
    ),
)
