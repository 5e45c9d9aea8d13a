"""Keyset (cursor) pagination: stable under concurrent inserts, O(page) regardless of depth."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from patronage.kit.errors import field_error

T = TypeVar("T")
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise field_error("cursor", "not a cursor returned by this API") from exc
    if not isinstance(values, list):
        raise field_error("cursor", "not a cursor returned by this API")
    return values


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise field_error("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
    return limit


def paginate_by_id(
    session: Session,
    stmt: Select[T],
    id_column: InstrumentedAttribute[int],
    *,
    cursor: str | None,
    limit: int | None,
    descending: bool = True,
) -> tuple[list[T], str | None]:
    """Page through ``stmt`` ordered by its integer id; returns (rows, next cursor)."""
    size = check_limit(limit)
    if cursor:
        (last_id,) = decode_cursor(cursor) or [None]
        if not isinstance(last_id, int):
            raise field_error("cursor", "not a cursor returned by this API")
        stmt = stmt.where(id_column < last_id if descending else id_column > last_id)
    stmt = stmt.order_by(id_column.desc() if descending else id_column.asc()).limit(size + 1)
    rows = list(session.scalars(stmt))
    next_cursor = encode_cursor([rows[size - 1].id]) if len(rows) > size else None  # type: ignore[attr-defined]
    return rows[:size], next_cursor


def keyset_after(columns: Sequence[Any], values: Sequence[Any], *, descending: bool) -> Any:
    """WHERE clause for "strictly after (values)" on a composite ordering, portable across dialects."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == values[j] for j in range(i)]
        step = column < values[i] if descending else column > values[i]
        clauses.append(and_(*equal, step))
    return or_(*clauses)
