"""Queries for profiles (look-ups, search, order aggregates, stages, activity) and merges, scoped by workspace.

A profile's identifiers and tags: ``identity_repository.py``; attribute definitions and settings:
``definition_repository.py``; what erasure purges outside the profile: ``erasure_repository.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from patronage.customers.models import (
    Customer,
    CustomerIdentity,
    CustomerTag,
)
from patronage.kit.clock import utcnow
from patronage.kit.repository import WorkspaceRepository
from patronage.kit.types import Money, UTCDateTime
from patronage.kit.upsert import execute_many, insert_with_ids, matching_batches

CHUNK = 500
CUSTOMERS = cast(Table, Customer.__table__)


def _add_totals_statement(*, dated: bool) -> Any:
    """``add_order_totals``' relative UPDATE, built once (execute_many then compiles it once)."""
    c: Any = CUSTOMERS.c
    values: dict[Any, Any] = {
        c.orders_count: c.orders_count + bindparam("b_orders"),
        c.total_spent: c.total_spent + bindparam("b_amount", type_=Money),
        c.updated_at: bindparam("b_now", type_=UTCDateTime()),
    }
    if dated:
        first, last = bindparam("b_first", type_=UTCDateTime()), bindparam("b_last", type_=UTCDateTime())
        values[c.first_order_at] = case(
            (or_(c.first_order_at.is_(None), c.first_order_at > first), first), else_=c.first_order_at
        )
        values[c.last_order_at] = case((or_(c.last_order_at.is_(None), c.last_order_at < last), last),
                                       else_=c.last_order_at)
    where = and_(c.id == bindparam("b_id"), c.workspace_id == bindparam("b_ws"))
    return update(CUSTOMERS).where(where).values(values)


_ADD_TOTALS_DATED = _add_totals_statement(dated=True)
_ADD_TOTALS = _add_totals_statement(dated=False)

MINIMAL_COLUMNS = (
    "workspace_id", "external_id", "tags", "attributes", "orders_count", "total_spent", "lifecycle_stage",
    "created_at", "updated_at",
)


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class CustomerRepository(WorkspaceRepository[Customer]):
    model = Customer

    def get_many(self, ids: Iterable[int]) -> list[Customer]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        return list(self.session.scalars(self.select().where(Customer.id.in_(wanted)).order_by(Customer.id)))

    def lock(self, ids: Sequence[int]) -> list[Customer]:
        """Rows locked in id order (the house lock order), fresh from the database."""
        stmt = (
            self.select()
            .where(Customer.id.in_(sorted(set(ids))))
            .order_by(Customer.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list(self.session.scalars(stmt))

    def refresh(self, customer_id: int) -> Customer | None:
        stmt = self.select().where(Customer.id == customer_id).execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def by_external_ids(self, external_ids: Sequence[str]) -> dict[str, tuple[int, int | None]]:
        """external_id -> (customer id, merged_into_id), straight from the profile column."""
        found: dict[str, tuple[int, int | None]] = {}
        for matching in matching_batches(self.session, Customer.external_id, external_ids, size=CHUNK):
            stmt = select(Customer.external_id, Customer.id, Customer.merged_into_id).where(
                Customer.workspace_id == self.workspace_id, matching
            )
            for external_id, customer_id, merged_into in self.session.execute(stmt):
                found[str(external_id)] = (customer_id, merged_into)
        return found

    def search(
        self,
        *,
        q: str | None = None,
        identity_values: Sequence[str] = (),
        tag: str | None = None,
        stage: str | None = None,
        include_merged: bool = False,
    ) -> Select[Customer]:
        stmt = self.select()
        if not include_merged:
            stmt = stmt.where(Customer.merged_into_id.is_(None))
        if stage:
            stmt = stmt.where(Customer.lifecycle_stage == stage)
        if tag:
            stmt = stmt.where(
                exists().where(
                    CustomerTag.workspace_id == self.workspace_id,
                    CustomerTag.customer_id == Customer.id,
                    CustomerTag.tag == tag,
                )
            )
        if q:
            pattern = like_pattern(q.lower())
            first = func.coalesce(Customer.first_name, "")
            last = func.coalesce(Customer.last_name, "")
            conditions: list[ColumnElement[bool]] = [
                Customer.email.like(pattern, escape="\\"),
                func.lower(first + " " + last).like(pattern, escape="\\"),
                func.lower(last).like(pattern, escape="\\"),
                Customer.external_id == q,
            ]
            if identity_values:
                conditions.append(
                    exists().where(
                        CustomerIdentity.workspace_id == self.workspace_id,
                        CustomerIdentity.customer_id == Customer.id,
                        CustomerIdentity.value.in_(list(identity_values)),
                    )
                )
            stmt = stmt.where(or_(*conditions))
        return stmt

    def merged_into(self, customer_id: int) -> list[Customer]:
        """Profiles merged (directly) into ``customer_id``."""
        return list(self.session.scalars(self.select().where(Customer.merged_into_id == customer_id)))

    def repoint_merged(self, from_id: int, to_id: int) -> None:
        self.session.execute(
            update(Customer)
            .where(Customer.workspace_id == self.workspace_id, Customer.merged_into_id == from_id)
            .values(merged_into_id=to_id)
        )

    # ---- bulk paths for ingestion ------------------------------------------------------------------
    def insert_minimal(self, external_ids: Sequence[str]) -> dict[str, int]:
        """Bare profiles in one driver call (``kit.upsert``); returns external_id -> new id."""
        now = utcnow()
        zero = Decimal("0.0000")
        rows: list[tuple[Any, ...]] = [
            (self.workspace_id, e, [], {}, 0, zero, "prospect", now, now) for e in external_ids]
        ids = insert_with_ids(self.session, CUSTOMERS, MINIMAL_COLUMNS, rows)
        return dict(zip(external_ids, ids, strict=True))

    def add_order_totals(self, totals: Sequence[tuple[int, datetime | None, datetime | None, Decimal, int]]) -> None:
        """Relative updates, one executemany per shape: (id, first placed, last placed, amount, orders)."""
        now, ws = utcnow(), self.workspace_id
        with_dates = [
            {"b_id": i, "b_ws": ws, "b_first": f, "b_last": la, "b_amount": a, "b_orders": n, "b_now": now}
            for i, f, la, a, n in totals
            if f is not None and la is not None
        ]
        without_dates = [
            {"b_id": i, "b_ws": ws, "b_amount": a, "b_orders": n, "b_now": now}
            for i, f, la, a, n in totals
            if f is None or la is None
        ]
        self.session.flush()  # driver-level executemany below: pending ORM changes go first
        execute_many(self.session, _ADD_TOTALS_DATED, with_dates)
        execute_many(self.session, _ADD_TOTALS, without_dates)
        self._expire_cached(i for i, *_ in totals)

    def add_totals_of_orders(self, order_ranges: Sequence[Sequence[int]]) -> None:
        """Fold new orders (ids in inclusive [first, last] ``order_ranges``; cancelled ones never count)
        into their customers' aggregates: one ``UPDATE ... FROM (SELECT ... GROUP BY customer_id)``,
        relative like ``add_order_totals``, with no per-customer round trip."""
        from patronage.events.models import Order

        o: Any = cast(Table, Order.__table__).c
        per_customer = (
            select(o.customer_id, func.count().label("n"), func.sum(o.total).label("spent"),
                   func.min(o.placed_at).label("first"), func.max(o.placed_at).label("last"))
            # ``workspace_id + 0``: still scoped, but no index on it can drive the scan. SQLite otherwise
            # walks every order of the workspace along ix_orders_ws_customer_placed (for the GROUP BY's
            # order) instead of the id ranges along the primary key: each chunk of an import cost more
            # than the one before.
            .where((o.workspace_id + 0) == self.workspace_id, o.status != "cancelled",
                   or_(*(o.id.between(first, last) for first, last in order_ranges)))
            .group_by(o.customer_id)
            .subquery()
        )
        self._add_totals(per_customer)
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, Customer):
                self.session.expire(obj, ["orders_count", "total_spent", "first_order_at", "last_order_at",
                                          "updated_at"])

    def _add_totals(self, per_customer: Any) -> None:
        c: Any = CUSTOMERS.c
        self.session.execute(
            update(CUSTOMERS)
            .where(c.id == per_customer.c.customer_id, c.workspace_id == self.workspace_id)
            .values({
                c.orders_count: c.orders_count + per_customer.c.n,
                c.total_spent: c.total_spent + per_customer.c.spent,
                c.first_order_at: case((or_(c.first_order_at.is_(None), c.first_order_at > per_customer.c.first),
                                        per_customer.c.first), else_=c.first_order_at),
                c.last_order_at: case((or_(c.last_order_at.is_(None), c.last_order_at < per_customer.c.last),
                                       per_customer.c.last), else_=c.last_order_at),
                c.updated_at: utcnow(),
            })
            .execution_options(synchronize_session=False)
        )

    def absorb_totals(self, survivor: Customer, duplicate: Customer) -> None:
        """Add the duplicate's aggregates to the survivor's (relative) and zero the duplicate's."""
        c: Any = CUSTOMERS.c
        first, last = duplicate.first_order_at, duplicate.last_order_at
        values: dict[Any, Any] = {
            c.orders_count: c.orders_count + duplicate.orders_count,
            c.total_spent: c.total_spent + duplicate.total_spent,
            c.updated_at: utcnow(),
        }
        if first is not None:
            values[c.first_order_at] = case(
                (or_(c.first_order_at.is_(None), c.first_order_at > first), first), else_=c.first_order_at
            )
        if last is not None:
            values[c.last_order_at] = case(
                (or_(c.last_order_at.is_(None), c.last_order_at < last), last), else_=c.last_order_at
            )
        scope = (c.workspace_id == self.workspace_id)
        self.session.execute(update(CUSTOMERS).where(scope, c.id == survivor.id).values(values))
        self.session.execute(
            update(CUSTOMERS)
            .where(scope, c.id == duplicate.id)
            .values(orders_count=0, total_spent=Decimal("0.0000"), first_order_at=None, last_order_at=None)
        )
        self._expire_cached([survivor.id, duplicate.id])

    def _expire_cached(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        fields = ["orders_count", "total_spent", "first_order_at", "last_order_at", "updated_at"]
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, Customer) and obj.id in wanted:
                self.session.expire(obj, fields)

    def set_stages(self, changes: Sequence[tuple[int, str]]) -> None:
        if not changes:
            return
        c: Any = CUSTOMERS.c
        stmt = (
            update(CUSTOMERS)
            .where(c.id == bindparam("b_id"), c.workspace_id == self.workspace_id)
            .values(lifecycle_stage=bindparam("b_stage"))
        )
        self.session.execute(stmt, [{"b_id": i, "b_stage": s} for i, s in changes])
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, Customer) and obj.id in dict(changes):
                self.session.expire(obj, ["lifecycle_stage"])

    def activity_for(self, ids: Sequence[int]) -> list[Any]:
        """``activity_chunk``'s columns for these (unmerged) profiles, in id order."""
        stmt = (
            select(
                Customer.id, Customer.orders_count, Customer.total_spent, Customer.first_order_at,
                Customer.last_order_at, Customer.lifecycle_stage,
            )
            .where(Customer.workspace_id == self.workspace_id, Customer.merged_into_id.is_(None),
                   Customer.id.in_(list(ids)))
            .order_by(Customer.id)
        )
        return list(self.session.execute(stmt))

    def activity_chunk(self, after_id: int, size: int) -> list[Any]:
        """Unmerged profiles after ``after_id``: id, aggregates and current stage, for bulk lifecycle."""
        stmt = (
            select(
                Customer.id, Customer.orders_count, Customer.total_spent, Customer.first_order_at,
                Customer.last_order_at, Customer.lifecycle_stage,
            )
            .where(
                Customer.workspace_id == self.workspace_id,
                Customer.merged_into_id.is_(None),
                Customer.id > after_id,
            )
            .order_by(Customer.id)
            .limit(size)
        )
        return list(self.session.execute(stmt))


def move_rows(session: Session, column: Column[Any], workspace_id: int, from_id: int, to_id: int) -> int:
    """Re-point every row of ``column``'s table from one customer to another (merges)."""
    table = column.table
    scope = table.c.workspace_id == workspace_id
    result = session.execute(update(table).where(scope, column == from_id).values({column.name: to_id}))
    return int(result.rowcount)  # type: ignore[attr-defined]


def aggregate_mismatches(session: Session, limit: int = 100) -> list[Any]:
    """Profiles (all workspaces) whose order aggregates disagree with their orders (``patronage doctor``).

    Rows: workspace_id, id, orders_count, total_spent, first/last_order_at, and the orders' n, spent,
    first, last. Money is compared to a hundredth of a cent (SQLite keeps it as floating point).
    """
    from sqlalchemy import literal

    from patronage.events.models import Order, OrderStatusChange

    o = Order.__table__.c
    counts = o.status != "cancelled"
    # Cancelled after being recorded: it counted once, and its placed_at stays in first/last.
    cancelled_later = exists().where(
        OrderStatusChange.order_id == o.id, OrderStatusChange.status == "cancelled")
    agg = (
        select(
            o.customer_id,
            func.sum(case((counts, 1), else_=0)).label("n"),
            func.sum(case((counts, o.total - o.refunded_total), else_=literal(0))).label("spent"),
            func.min(case((or_(counts, cancelled_later), o.placed_at))).label("first"),
            func.max(case((or_(counts, cancelled_later), o.placed_at))).label("last"),
        )
        .group_by(o.customer_id)
        .subquery()
    )
    c: Any = CUSTOMERS.c
    n = func.coalesce(agg.c.n, 0)
    spent = func.coalesce(agg.c.spent, 0)
    stmt = (
        select(c.workspace_id, c.id, c.orders_count, c.total_spent, c.first_order_at, c.last_order_at,
               n.label("n"), spent.label("spent"), agg.c.first, agg.c.last)
        .select_from(CUSTOMERS.outerjoin(agg, agg.c.customer_id == c.id))
        .where(or_(
            c.orders_count != n,
            func.abs(c.total_spent - spent) > 0.0001,
            c.first_order_at.is_distinct_from(agg.c.first),
            c.last_order_at.is_distinct_from(agg.c.last),
        ))
        .order_by(c.workspace_id, c.id)
        .limit(limit)
    )
    return list(session.execute(stmt))
