"""One time-ordered, paginated feed of everything about a customer.

Each domain registers a *source*: ``fn(session, workspace_id, customer_id, before_cursor, limit)``
returning up to ``limit`` ``TimelineItem`` s strictly before ``before_cursor`` (None: from the newest),
newest first, in (at, kind, id) descending order. The feed merge-sorts all sources and pages by an
opaque cursor over (at, kind, id). A single-kind source filters with ``before_clause`` (see
activity_repository) on its time and id columns.

Built-in sources: orders, returns, behavioural events, consent decisions and lifecycle stage changes.
"""

from __future__ import annotations

import heapq
import inspect
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from patronage.customers.activity_repository import ActivityRepository, TimelineKey, before_clause
from patronage.customers.consent_repository import ConsentEvidenceRepository
from patronage.customers.lifecycle_repository import StageHistoryRepository
from patronage.customers.service import get_customer
from patronage.kit.errors import field_error
from patronage.kit.pagination import check_limit, decode_cursor, encode_cursor

__all__ = ["TimelineItem", "TimelineSource", "before_clause", "customer_timeline", "register_source"]


class TimelineItem(BaseModel):
    at: datetime
    kind: str = Field(description="order, return, event, consent, lifecycle, or a later domain's kind")
    id: int = Field(description="the row id within its kind")
    title: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> TimelineKey:
        return (self.at, self.kind, self.id)


TimelineSource = Callable[[Session, int, int, TimelineKey | None, int], Sequence[TimelineItem]]
_SOURCES: dict[str, TimelineSource] = {}
log = logging.getLogger("patronage.customers.timeline")


def register_source(name: str, fn: TimelineSource) -> None:
    """Add (or replace) the timeline source called ``name``.

    A function that cannot take the five positional arguments of the contract is refused with an
    error in the log (not an exception: one domain's mistake must not stop the others from starting).
    """
    try:
        inspect.signature(fn).bind(None, 0, 0, None, 1)
    except TypeError:
        log.error(
            "timeline source %r ignored: it must accept (session, workspace_id, customer_id, before_cursor,"
            " limit) and return TimelineItem objects", name,
        )
        return
    _SOURCES[name] = fn


def sources() -> dict[str, TimelineSource]:
    return dict(_SOURCES)


def _decode(cursor: str | None) -> TimelineKey | None:
    if not cursor:
        return None
    values = decode_cursor(cursor)
    try:
        at, kind, id_ = values
        key = (datetime.fromisoformat(at), str(kind), int(id_))
    except (TypeError, ValueError) as exc:
        raise field_error("cursor", "not a cursor returned by this API") from exc
    if key[0].tzinfo is None:
        raise field_error("cursor", "not a cursor returned by this API")
    return key


def customer_timeline(
    session: Session, workspace_id: int, customer_id: int, *, cursor: str | None = None, limit: int | None = None
) -> tuple[list[TimelineItem], str | None]:
    """A page of the feed, newest first, and the cursor of the next page (None at the end)."""
    get_customer(session, workspace_id, customer_id)
    size = check_limit(limit)
    before = _decode(cursor)
    streams = [
        sorted(fn(session, workspace_id, customer_id, before, size + 1), key=lambda i: i.key, reverse=True)
        for fn in _SOURCES.values()
    ]
    merged = heapq.merge(*streams, key=lambda i: i.key, reverse=True)
    page: list[TimelineItem] = []
    for item in merged:
        if before is not None and item.key >= before:
            continue  # a source ignoring the cursor must not repeat items
        page.append(item)
        if len(page) > size:
            break
    if len(page) > size:
        last = page[size - 1]
        return page[:size], encode_cursor([last.at.isoformat(), last.kind, last.id])
    return page, None


# ---- built-in sources ------------------------------------------------------------------------------
def _money(value: Any) -> str:
    return format(value, "f")


def orders_source(
    session: Session, workspace_id: int, customer_id: int, before: TimelineKey | None, limit: int
) -> list[TimelineItem]:
    return [
        TimelineItem(
            at=o.placed_at, kind="order", id=o.id,
            title=f"Order {o.external_id}: {_money(o.total)} {o.currency}",
            data={"external_id": o.external_id, "total": _money(o.total), "currency": o.currency,
                  "refunded_total": _money(o.refunded_total), "status": o.status, "channel": o.channel,
                  "store": o.store},
        )
        for o in ActivityRepository(session, workspace_id).orders_before(customer_id, before, limit)
    ]


def returns_source(
    session: Session, workspace_id: int, customer_id: int, before: TimelineKey | None, limit: int
) -> list[TimelineItem]:
    return [
        TimelineItem(
            at=r.returned_at, kind="return", id=r.id,
            title=f"Return {r.external_id} of order {order_external_id}: {_money(r.amount)} {r.currency}",
            data={"external_id": r.external_id, "order_external_id": order_external_id, "amount": _money(r.amount),
                  "currency": r.currency, "status": r.status, "reason": r.reason},
        )
        for r, order_external_id in ActivityRepository(session, workspace_id).returns_before(customer_id, before, limit)
    ]


def events_source(
    session: Session, workspace_id: int, customer_id: int, before: TimelineKey | None, limit: int
) -> list[TimelineItem]:
    return [
        TimelineItem(at=e.occurred_at, kind="event", id=e.id, title=e.type,
                     data={"type": e.type, "external_id": e.external_id, "properties": e.properties})
        for e in ActivityRepository(session, workspace_id).events_before(customer_id, before, limit)
    ]


def consent_source(
    session: Session, workspace_id: int, customer_id: int, before: TimelineKey | None, limit: int
) -> list[TimelineItem]:
    return [
        TimelineItem(
            at=c.occurred_at, kind="consent", id=c.id,
            title=f"Consent {c.status}: {c.channel}{'/' + c.topic if c.topic else ''}",
            data={"channel": c.channel, "topic": c.topic or None, "status": c.status, "source": c.source,
                  "text_version": c.text_version},
        )
        for c in ConsentEvidenceRepository(session, workspace_id).before(customer_id, before, limit)
    ]


def lifecycle_source(
    session: Session, workspace_id: int, customer_id: int, before: TimelineKey | None, limit: int
) -> list[TimelineItem]:
    return [
        TimelineItem(
            at=h.entered_at, kind="lifecycle", id=h.id, title=f"Entered stage {h.stage}",
            data={"stage": h.stage, "previous_stage": h.previous_stage, "reason": h.reason},
        )
        for h in StageHistoryRepository(session, workspace_id).before(customer_id, before, limit)
    ]


register_source("orders", orders_source)
register_source("returns", returns_source)
register_source("events", events_source)
register_source("consent", consent_source)
register_source("lifecycle", lifecycle_source)
