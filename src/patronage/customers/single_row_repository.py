"""Single-row writes of profiles and their aggregates for one order's request.

``POST /orders`` for a first-time customer creates one profile: the bulk helpers of ``repository.py`` (id
allocation, COPY) cost several round trips for that one row. These write it with single prepared
statements and no savepoint: a concurrent creator of the same profile makes the insert skip
(``kit.insert_once``), not fail. Every statement is scoped by the workspace.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, insert, or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from patronage.customers.models import Customer, CustomerIdentity, StageHistory
from patronage.customers.repository import CUSTOMERS
from patronage.kit.clock import utcnow
from patronage.kit.insert_once import InsertOnce
from patronage.kit.types import Money, UTCDateTime

IDENTITIES = cast(Table, CustomerIdentity.__table__)
_INSERT_BARE_CUSTOMER = InsertOnce(
    CUSTOMERS, conflict=("workspace_id", "external_id"), conflict_where=CUSTOMERS.c.external_id.is_not(None))
_INSERT_IDENTITY = InsertOnce(IDENTITIES, conflict=("workspace_id", "kind", "value"))


def insert_bare_customer(
    session: Session, workspace_id: int, external_id: str, *, email: str | None = None,
    first_order: tuple[datetime, Decimal] | None,
) -> int | None:
    """A bare profile (as ``insert_minimal``, with ``email`` when given) whose aggregates already count
    ``first_order`` (placed_at, amount) when given; None when a profile with this external id exists
    (nothing written)."""
    now = utcnow()
    placed, amount = first_order if first_order is not None else (None, Decimal("0.0000"))
    row = _INSERT_BARE_CUSTOMER(session, {
        "workspace_id": workspace_id, "external_id": external_id, "email": email, "tags": [], "attributes": {},
        "orders_count": 0 if first_order is None else 1, "total_spent": amount, "first_order_at": placed,
        "last_order_at": placed, "lifecycle_stage": "prospect", "created_at": now, "updated_at": now,
    })
    return None if row is None else int(row[0])


def insert_identity_unless_taken(session: Session, workspace_id: int, customer_id: int, kind: str, value: str) -> bool:
    """Give the profile this identity; False when another profile holds it (nothing written)."""
    now = utcnow()
    row = _INSERT_IDENTITY(session, {"workspace_id": workspace_id, "customer_id": customer_id, "kind": kind,
                                     "value": value, "created_at": now, "updated_at": now})
    return row is not None


def delete_new_customer(session: Session, workspace_id: int, customer_id: int) -> None:
    """Take back a profile inserted earlier in this transaction, with its identities, when one of its
    identifiers turned out to belong to another profile."""
    i: Any = IDENTITIES.c
    c: Any = CUSTOMERS.c
    session.execute(delete(IDENTITIES).where(i.workspace_id == workspace_id, i.customer_id == customer_id))
    session.execute(delete(CUSTOMERS).where(c.workspace_id == workspace_id, c.id == customer_id))


def clear_order_totals(session: Session, workspace_id: int, customer_id: int) -> None:
    """Zero the aggregates of a profile created in this transaction whose first order was not recorded
    after all: no order of it counts yet, so this is exact (nobody else can see the row)."""
    c: Any = CUSTOMERS.c
    session.execute(
        update(CUSTOMERS).where(c.workspace_id == workspace_id, c.id == customer_id)
        .values(orders_count=0, total_spent=Decimal("0.0000"), first_order_at=None, last_order_at=None)
    )
    _expire_totals(session, customer_id)


def _expire_totals(session: Session, customer_id: int) -> None:
    """A loaded profile's aggregates are stale after a Core update: reload them on next access."""
    loaded = session.identity_map.get(identity_key(Customer, customer_id))
    if loaded is not None:
        session.expire(loaded, ["orders_count", "total_spent", "first_order_at", "last_order_at", "updated_at"])


def _one_total_statements() -> tuple[Any, Any]:
    c: Any = CUSTOMERS.c
    first = bindparam("b_first", type_=UTCDateTime())
    last = bindparam("b_last", type_=UTCDateTime())
    base: dict[Any, Any] = {
        c.orders_count: c.orders_count + bindparam("b_orders"),
        c.total_spent: c.total_spent + bindparam("b_amount", type_=Money),
        c.updated_at: bindparam("b_now", type_=UTCDateTime()),
    }
    dated = dict(base)
    dated[c.first_order_at] = case((or_(c.first_order_at.is_(None), c.first_order_at > first), first),
                                   else_=c.first_order_at)
    dated[c.last_order_at] = case((or_(c.last_order_at.is_(None), c.last_order_at < last), last),
                                  else_=c.last_order_at)
    where = and_(c.id == bindparam("b_id"), c.workspace_id == bindparam("b_ws"))
    return update(CUSTOMERS).where(where).values(dated), update(CUSTOMERS).where(where).values(base)


_ONE_TOTAL_DATED, _ONE_TOTAL = _one_total_statements()


def add_one_order_total(
    session: Session, workspace_id: int, customer_id: int, *, placed_at: datetime | None, amount: Decimal,
    orders: int,
) -> None:
    """``add_order_totals`` for one profile: the same relative update, one cached statement."""
    params: dict[str, Any] = {"b_id": customer_id, "b_ws": workspace_id, "b_amount": amount, "b_orders": orders,
                              "b_now": utcnow()}
    if placed_at is None:
        session.execute(_ONE_TOTAL, params)
    else:
        session.execute(_ONE_TOTAL_DATED, {**params, "b_first": placed_at, "b_last": placed_at})
    _expire_totals(session, customer_id)


def insert_stage_start(session: Session, workspace_id: int, customer_id: int, stage: str, at: datetime) -> None:
    """A new profile's first stage-history row (``StageHistoryRepository.insert_many`` for one row)."""
    now = utcnow()
    session.execute(insert(cast(Table, StageHistory.__table__)), {
        "workspace_id": workspace_id, "customer_id": customer_id, "stage": stage, "previous_stage": None,
        "entered_at": at, "reason": {}, "created_at": now, "updated_at": now,
    })
