"""What the database knows about an arriving order, in one round trip.

Recording a new order needs several small facts: is the order already known (and its content hash), which
profile its customer identifiers point to (identity rows, else the profile column), the workspace's
currency when the order names none, and the catalogue's name and category of its lines' skus. Asked one
by one they cost a round trip each, and on the hot path of ``POST /orders`` the round trips are most of
the request's cost. Here they are branches of one ``UNION ALL``, each a plain look-up on a unique index,
every one scoped by the workspace. Rows are ``(tag, n1, n2, s1, s2, s3)``; the tag says which branch.
On PostgreSQL one more branch, which returns no row, takes the order's arrival lock (``arrival_lock.py``).

Statements are built once per shape (which of the facts are wanted) and reused, so SQLAlchemy's compiled
cache serves every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import Text

from patronage.customers.models import Customer, CustomerIdentity
from patronage.events.arrival_lock import locks_orders, order_key, order_keys
from patronage.events.models import Order, Product
from patronage.workspaces.models import Workspace

WS: BindParameter[int] = bindparam("a_ws")


@dataclass
class Arrival:
    """The facts about one arriving order (``None``: not found)."""

    order: tuple[int, str | None] | None = None  # (order id, content hash)
    by_external_identity: tuple[int, int | None] | None = None  # (customer id, merged_into_id)
    by_email_identity: tuple[int, int | None] | None = None
    by_external_column: tuple[int, int | None] | None = None  # customers.external_id, no identity row
    currency: str | None = None
    catalogue: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # sku -> (name, category)


def _row(tag: str, *columns: Any) -> list[ColumnElement[Any]]:
    padded = list(columns) + [None] * (5 - len(columns))
    names = ("n1", "n2", "s1", "s2", "s3")
    return [literal_column(f"'{tag}'").label("tag")] + [
        (null() if c is None else c).label(name) for c, name in zip(padded, names, strict=True)
    ]


def _order_branch() -> Select[Any]:
    return select(*_row("o", Order.id, None, Order.content_hash)).where(
        Order.workspace_id == WS, Order.external_id == bindparam("a_order"))


def _identity_branch(tag: str, kind: str, value: str) -> Select[Any]:
    return (
        select(*_row(tag, CustomerIdentity.customer_id, Customer.merged_into_id))
        .join(Customer, Customer.id == CustomerIdentity.customer_id)
        .where(CustomerIdentity.workspace_id == WS, CustomerIdentity.kind == kind,
               CustomerIdentity.value == bindparam(value), Customer.workspace_id == WS)
    )


def _column_branch() -> Select[Any]:
    return select(*_row("c", Customer.id, Customer.merged_into_id)).where(
        Customer.workspace_id == WS, Customer.external_id == bindparam("a_customer"))


def _currency_branch() -> Select[Any]:
    return select(*_row("w", None, None, Workspace.currency)).where(Workspace.id == WS)


def _catalogue_branch(skus: int) -> Select[Any]:
    # One plain parameter per sku for the usual few (a fixed SQL text that the driver caches and prepares);
    # an expanding IN, re-rendered on every execution, only for long orders.
    wanted = (bindparam("a_skus", expanding=True) if skus > FIXED_SKUS
              else [bindparam(f"a_sku{i}") for i in range(skus)])
    return select(*_row("p", None, None, Product.sku, Product.name, Product.category)).where(
        Product.workspace_id == WS, Product.sku.in_(wanted))


def _lock_branch() -> Select[Any]:
    # Evaluated (the lock is taken) but never true: the branch adds no row.
    return select(*_row("l")).where(cast(func.pg_advisory_xact_lock(bindparam("a_lock")), Text).is_(None))


def _batch_lock_branch() -> Select[Any]:
    keys = func.unnest(bindparam("b_locks", type_=ARRAY(BigInteger))).alias("k")
    return select(*_row("l")).select_from(keys).where(
        cast(func.pg_advisory_xact_lock(literal_column("k")), Text).is_(None))


FIXED_SKUS = 8
_STATEMENTS: dict[tuple[bool, bool, bool, int, bool], CompoundSelect[Any]] = {}


def _statement(external_id: bool, email: bool, currency: bool, skus: int, lock: bool) -> CompoundSelect[Any]:
    skus = min(skus, FIXED_SKUS + 1)
    shape = (external_id, email, currency, skus, lock)
    found = _STATEMENTS.get(shape)
    if found is None:
        branches = [_order_branch()]
        if external_id:
            branches += [_identity_branch("x", "external_id", "a_customer"), _column_branch()]
        if email:
            branches.append(_identity_branch("e", "email", "a_email"))
        if currency:
            branches.append(_currency_branch())
        if skus:
            branches.append(_catalogue_branch(skus))
        if lock:  # last: the branches before it type the columns it leaves NULL
            branches.append(_lock_branch())
        found = _STATEMENTS[shape] = union_all(*branches)
    return found


def arrival(
    session: Session, workspace_id: int, *, order_external_id: str, customer_external_id: str | None,
    email: str | None, want_currency: bool, skus: Sequence[str],
) -> Arrival:
    """The facts about an order about to be recorded (one statement, which takes its arrival lock)."""
    params: dict[str, Any] = {"a_ws": workspace_id, "a_order": order_external_id}
    lock = locks_orders(session)
    if lock:
        params["a_lock"] = order_key(workspace_id, order_external_id)
    if customer_external_id:
        params["a_customer"] = customer_external_id
    if email:
        params["a_email"] = email
    wanted = list(dict.fromkeys(skus))
    if len(wanted) > FIXED_SKUS:
        params["a_skus"] = wanted
    else:
        params.update({f"a_sku{i}": sku for i, sku in enumerate(wanted)})
    stmt = _statement(bool(customer_external_id), bool(email), want_currency, len(wanted), lock)
    found = Arrival()
    for tag, n1, n2, s1, s2, s3 in session.execute(stmt, params):
        if tag == "o":
            found.order = (int(n1), s1)
        elif tag == "x":
            found.by_external_identity = (int(n1), n2)
        elif tag == "e":
            found.by_email_identity = (int(n1), n2)
        elif tag == "c":
            found.by_external_column = (int(n1), n2)
        elif tag == "w":
            found.currency = s1
        elif tag == "p":
            found.catalogue[s1] = (s2, s3)
    return found


# ---- many orders at once (group commit) ---------------------------------------------------------------
@dataclass
class Arrivals:
    """The facts about a batch of arriving orders of one workspace (absent: not found)."""

    orders: set[str] = field(default_factory=set)  # external ids of orders already recorded
    identities: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # external id -> (id, merged_into)
    columns: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # customers.external_id, no identity
    currency: str | None = None
    catalogue: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def _batch_statement(currency: bool, skus: bool, lock: bool) -> CompoundSelect[Any]:
    shape = (currency, skus, lock)
    found = _BATCH_STATEMENTS.get(shape)
    if found is None:
        branches = [
            select(*_row("o", None, None, Order.external_id)).where(
                Order.workspace_id == WS, Order.external_id.in_(bindparam("b_orders", expanding=True))),
            select(*_row("x", CustomerIdentity.customer_id, Customer.merged_into_id, CustomerIdentity.value))
            .join(Customer, Customer.id == CustomerIdentity.customer_id)
            .where(CustomerIdentity.workspace_id == WS, CustomerIdentity.kind == "external_id",
                   CustomerIdentity.value.in_(bindparam("b_customers", expanding=True)), Customer.workspace_id == WS),
            select(*_row("c", Customer.id, Customer.merged_into_id, Customer.external_id)).where(
                Customer.workspace_id == WS, Customer.external_id.in_(bindparam("b_customers", expanding=True))),
        ]
        if currency:
            branches.append(_currency_branch())
        if skus:
            branches.append(select(*_row("p", None, None, Product.sku, Product.name, Product.category)).where(
                Product.workspace_id == WS, Product.sku.in_(bindparam("b_skus", expanding=True))))
        if lock:
            branches.append(_batch_lock_branch())
        found = _BATCH_STATEMENTS[shape] = union_all(*branches)
    return found


_BATCH_STATEMENTS: dict[tuple[bool, bool, bool], CompoundSelect[Any]] = {}


def arrivals(
    session: Session, workspace_id: int, *, order_external_ids: Sequence[str],
    customer_external_ids: Sequence[str], want_currency: bool, skus: Sequence[str],
) -> Arrivals:
    """``arrival`` for many orders identified by external ids (one statement; their locks, in key order)."""
    params: dict[str, Any] = {"a_ws": workspace_id, "b_orders": list(dict.fromkeys(order_external_ids)),
                              "b_customers": list(dict.fromkeys(customer_external_ids))}
    lock = locks_orders(session)
    if lock:
        params["b_locks"] = order_keys(workspace_id, order_external_ids)
    wanted = list(dict.fromkeys(skus))
    if wanted:
        params["b_skus"] = wanted
    found = Arrivals()
    for tag, n1, n2, s1, s2, s3 in session.execute(_batch_statement(want_currency, bool(wanted), lock), params):
        if tag == "o":
            found.orders.add(s1)
        elif tag == "x":
            found.identities[s1] = (int(n1), n2)
        elif tag == "c":
            found.columns[s1] = (int(n1), n2)
        elif tag == "w":
            found.currency = s1
        elif tag == "p":
            found.catalogue[s1] = (s2, s3)
    return found
