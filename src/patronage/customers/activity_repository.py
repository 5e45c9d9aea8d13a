"""Read (and, for erasure, scrub) what a customer did: orders, returns and behavioural events.

The tables belong to the events domain; the customer views of them (timeline, export, lifecycle
signals, erasure) are queried here, always scoped by workspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from patronage.events.models import BehaviourEvent, Order, Return

TimelineKey = tuple[datetime, str, int]


def before_clause(
    at_column: InstrumentedAttribute[datetime] | ColumnElement[datetime],
    id_column: InstrumentedAttribute[int] | ColumnElement[int],
    kind: str,
    cursor: TimelineKey | None,
) -> ColumnElement[bool]:
    """Rows of a single-kind timeline source strictly before ``cursor`` in (at, kind, id) descending order.

    Later domains use it in their own timeline sources.
    """
    if cursor is None:
        return true()
    at, cursor_kind, cursor_id = cursor
    if kind < cursor_kind:
        return at_column <= at
    if kind > cursor_kind:
        return at_column < at
    return or_(at_column < at, and_(at_column == at, id_column < cursor_id))


class ActivityRepository:
    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id

    # ---- timeline ----------------------------------------------------------------------------------
    def orders_before(self, customer_id: int, cursor: TimelineKey | None, limit: int) -> list[Order]:
        stmt = (
            select(Order)
            .where(
                Order.workspace_id == self.workspace_id,
                Order.customer_id == customer_id,
                before_clause(Order.placed_at, Order.id, "order", cursor),
            )
            .order_by(Order.placed_at.desc(), Order.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def returns_before(
        self, customer_id: int, cursor: TimelineKey | None, limit: int
    ) -> list[tuple[Return, str]]:
        """Applied or held returns of the customer's orders, with the order's external id."""
        stmt = (
            select(Return, Order.external_id)
            .join(Order, Order.id == Return.order_id)
            .where(
                Return.workspace_id == self.workspace_id,
                Order.workspace_id == self.workspace_id,
                Order.customer_id == customer_id,
                before_clause(Return.returned_at, Return.id, "return", cursor),
            )
            .order_by(Return.returned_at.desc(), Return.id.desc())
            .limit(limit)
        )
        return [(r, str(ext)) for r, ext in self.session.execute(stmt)]

    def events_before(self, customer_id: int, cursor: TimelineKey | None, limit: int) -> list[BehaviourEvent]:
        stmt = (
            select(BehaviourEvent)
            .where(
                BehaviourEvent.workspace_id == self.workspace_id,
                BehaviourEvent.customer_id == customer_id,
                before_clause(BehaviourEvent.occurred_at, BehaviourEvent.id, "event", cursor),
            )
            .order_by(BehaviourEvent.occurred_at.desc(), BehaviourEvent.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    # ---- export ------------------------------------------------------------------------------------
    def orders_of(self, customer_ids: Sequence[int]) -> list[Order]:
        stmt = (
            select(Order)
            .where(Order.workspace_id == self.workspace_id, Order.customer_id.in_(list(customer_ids)))
            .options(selectinload(Order.lines))
            .order_by(Order.placed_at, Order.id)
        )
        return list(self.session.scalars(stmt))

    def returns_of(self, customer_ids: Sequence[int]) -> list[Return]:
        stmt = (
            select(Return)
            .join(Order, Order.id == Return.order_id)
            .where(
                Return.workspace_id == self.workspace_id,
                Order.workspace_id == self.workspace_id,
                Order.customer_id.in_(list(customer_ids)),
            )
            .order_by(Return.returned_at, Return.id)
        )
        return list(self.session.scalars(stmt))

    def events_of(self, customer_ids: Sequence[int]) -> list[BehaviourEvent]:
        stmt = (
            select(BehaviourEvent)
            .where(
                BehaviourEvent.workspace_id == self.workspace_id,
                BehaviourEvent.customer_id.in_(list(customer_ids)),
            )
            .order_by(BehaviourEvent.occurred_at, BehaviourEvent.id)
        )
        return list(self.session.scalars(stmt))

    # ---- lifecycle signals -------------------------------------------------------------------------
    def count_signals(
        self, customer_ids: Sequence[int], types: Sequence[str], since: datetime
    ) -> dict[int, int]:
        """Behavioural events of ``types`` since ``since``, per customer."""
        if not customer_ids:
            return {}
        stmt = (
            select(BehaviourEvent.customer_id, func.count())
            .where(
                BehaviourEvent.workspace_id == self.workspace_id,
                BehaviourEvent.customer_id.in_(list(customer_ids)),
                BehaviourEvent.type.in_(list(types)),
                BehaviourEvent.occurred_at >= since,
            )
            .group_by(BehaviourEvent.customer_id)
        )
        return {int(cid): int(n) for cid, n in self.session.execute(stmt)}

    # ---- erasure -----------------------------------------------------------------------------------
    def scrub(self, customer_ids: Sequence[int]) -> dict[str, int]:
        """Strip free-form personal data, keep what the books need: amounts, dates, types, ids."""
        ids = list(customer_ids)
        events = self.session.execute(
            update(BehaviourEvent)
            .where(BehaviourEvent.workspace_id == self.workspace_id, BehaviourEvent.customer_id.in_(ids))
            .values(properties={})
        )
        orders = self.session.execute(
            update(Order)
            .where(Order.workspace_id == self.workspace_id, Order.customer_id.in_(ids))
            .values(attributes={})
        )
        order_ids = select(Order.id).where(Order.workspace_id == self.workspace_id, Order.customer_id.in_(ids))
        returns = self.session.execute(
            update(Return)
            .where(Return.workspace_id == self.workspace_id, Return.order_id.in_(order_ids))
            .values(reason=None)
        )
        counts: dict[str, Any] = {"events": events, "orders": orders, "returns": returns}
        return {name: int(result.rowcount) for name, result in counts.items()}
