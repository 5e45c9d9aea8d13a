"""Reads the customer pages need that the domains' repositories do not offer yet.

* the customer list filtered by segment and tier and sorted by a chosen column (keyset cursor):
  extends ``CustomerRepository.search`` (customers) with segment/tier conditions; belongs there;
* per page, in bulk (no N+1): points balances (ledger), tier names (tiers) and analytics scores;
* one customer's analytics scores (CLV, P(alive)) and segment names.

Every query is scoped by workspace, built on the owning domain's models and repositories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from patronage.analytics.models import CustomerScores
from patronage.customers import service as customers
from patronage.customers.models import Customer
from patronage.customers.repository import CustomerRepository
from patronage.kit.errors import field_error
from patronage.kit.pagination import check_limit, decode_cursor, encode_cursor, keyset_after
from patronage.ledger.models import PointAccount
from patronage.segments.models import Segment, SegmentMembership
from patronage.segments.repository import SegmentRepository
from patronage.tiers.models import Tier, TierMembership
from patronage.tiers.repository import TierRepository

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SORTS = ("newest", "last_order", "spent", "orders", "name")


@dataclass(frozen=True)
class ListFilters:
    q: str | None = None
    stage: str | None = None
    tag: str | None = None
    segment_id: int | None = None
    tier_id: int | None = None
    sort: str = "newest"


def _sort_key(sort: str) -> tuple[Any, bool, str]:
    """(expression, descending, value kind) of a sort; ties break on the id, in the same direction."""
    if sort == "last_order":
        return func.coalesce(Customer.last_order_at, EPOCH), True, "datetime"
    if sort == "spent":
        return Customer.total_spent, True, "decimal"
    if sort == "orders":
        return Customer.orders_count, True, "int"
    if sort == "name":
        return func.lower(func.coalesce(Customer.last_name, "") + " " + func.coalesce(Customer.first_name, "")), \
            False, "str"
    return Customer.id, True, "int"


def _decode(cursor: str, kind: str) -> tuple[Any, int]:
    values = decode_cursor(cursor)
    try:
        raw, last_id = values
        parsers: dict[str, Callable[[Any], Any]] = {
            "datetime": datetime.fromisoformat, "decimal": Decimal, "int": int, "str": str,
        }
        value = parsers[kind](raw)
        return value, int(last_id)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise field_error("cursor", "not a cursor of this list") from exc


def _filtered(session: Session, workspace_id: int, f: ListFilters) -> Select[Customer]:
    stmt = CustomerRepository(session, workspace_id).search(
        q=f.q, identity_values=customers.search_identity_values(f.q) if f.q else (), tag=f.tag, stage=f.stage,
    )
    if f.segment_id is not None:
        stmt = stmt.where(exists().where(
            SegmentMembership.workspace_id == workspace_id, SegmentMembership.segment_id == f.segment_id,
            SegmentMembership.customer_id == Customer.id,
        ))
    if f.tier_id is not None:
        held: ColumnElement[bool] = exists().where(
            TierMembership.workspace_id == workspace_id, TierMembership.customer_id == Customer.id,
            TierMembership.tier_id == f.tier_id,
        )
        base = TierRepository(session, workspace_id).ladder().base()
        if base is not None and base.id == f.tier_id:  # no membership row = the base tier
            held = or_(held, ~exists().where(TierMembership.workspace_id == workspace_id,
                                             TierMembership.customer_id == Customer.id))
        stmt = stmt.where(held)
    return stmt


def customer_page(
    session: Session, workspace_id: int, f: ListFilters, *, cursor: str | None, limit: int | None = None
) -> tuple[list[Customer], str | None]:
    size = check_limit(limit)
    sort = f.sort if f.sort in SORTS else "newest"
    expr, descending, kind = _sort_key(sort)
    by_id = sort == "newest"
    stmt = _filtered(session, workspace_id, f)
    if cursor:
        value, last_id = _decode(cursor, kind)
        columns = [Customer.id] if by_id else [expr, Customer.id]
        values = [last_id] if by_id else [value, last_id]
        stmt = stmt.where(keyset_after(columns, values, descending=descending))
    order = [expr.desc() if descending else expr.asc()]
    if not by_id:
        order.append(Customer.id.desc() if descending else Customer.id.asc())
    rows = [tuple(row) for row in session.execute(stmt.add_columns(expr).order_by(*order).limit(size + 1))]
    next_cursor = None
    if len(rows) > size:
        last, value = rows[size - 1]
        raw = value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, Decimal) else value
        next_cursor = encode_cursor([raw, last.id])
    return [row[0] for row in rows[:size]], next_cursor


@dataclass(frozen=True)
class RowExtras:
    points: dict[int, int]
    tiers: dict[int, str]
    scores: dict[int, CustomerScores]


def row_extras(session: Session, workspace_id: int, customer_ids: Sequence[int]) -> RowExtras:
    """Balances, tier names and scores of a page of customers: three queries, whatever the page size."""
    ids = list(customer_ids)
    if not ids:
        return RowExtras({}, {}, {})
    points = {cid: available for cid, available in session.execute(
        select(PointAccount.customer_id, PointAccount.available).where(
            PointAccount.workspace_id == workspace_id, PointAccount.customer_id.in_(ids)))}
    tiers = {cid: name for cid, name in session.execute(select(TierMembership.customer_id, Tier.name).join(
        Tier, Tier.id == TierMembership.tier_id).where(
        TierMembership.workspace_id == workspace_id, TierMembership.customer_id.in_(ids)))}
    base = TierRepository(session, workspace_id).ladder().base()
    if base is not None:
        tiers = {cid: tiers.get(cid, base.name) for cid in ids}
    scores = {s.customer_id: s for s in session.scalars(select(CustomerScores).where(
        CustomerScores.workspace_id == workspace_id, CustomerScores.customer_id.in_(ids)))}
    return RowExtras(points, tiers, scores)


def scores_of(session: Session, workspace_id: int, customer_id: int) -> CustomerScores | None:
    return session.scalars(select(CustomerScores).where(
        CustomerScores.workspace_id == workspace_id, CustomerScores.customer_id == customer_id)).one_or_none()


def segment_names(session: Session, workspace_id: int, segment_ids: Sequence[int]) -> list[str]:
    if not segment_ids:
        return []
    repo = SegmentRepository(session, workspace_id)
    return list(session.scalars(select(Segment.name).where(
        Segment.id.in_(list(segment_ids)), Segment.workspace_id == repo.workspace_id).order_by(Segment.name)))


def segments(session: Session, workspace_id: int) -> list[Segment]:
    repo = SegmentRepository(session, workspace_id)
    return list(session.scalars(repo.select().order_by(Segment.name)))
