"""Cursor (keyset) pagination: opaque cursors, bounded pages, stable under inserts, composite orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from patronage.kit.audit import AuditEntry
from patronage.kit.db import Database
from patronage.kit.errors import ValidationFailed
from patronage.kit.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    check_limit,
    decode_cursor,
    encode_cursor,
    keyset_after,
    paginate_by_id,
)
from tests.conftest import Tenant

T0 = datetime(2030, 5, 1, tzinfo=UTC)


def test_cursor_round_trip_is_opaque_and_url_safe() -> None:
    cursor = encode_cursor([T0, 42, "a/b+c"])
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode_cursor(cursor) == [T0.isoformat(), 42, "a/b+c"]


@pytest.mark.parametrize("bad", ["%%%", "bm90IGpzb24", "_w", "eyJhIjogMX0"])
def test_foreign_cursors_are_422_on_the_cursor_field(bad: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(bad)
    assert caught.value.extra["errors"][0]["field"] == "cursor"


def test_limit_bounds() -> None:
    assert check_limit(None) == DEFAULT_PAGE_SIZE
    assert check_limit(1) == 1
    assert check_limit(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    for bad in (0, -1, MAX_PAGE_SIZE + 1):
        with pytest.raises(ValidationFailed) as caught:
            check_limit(bad)
        assert caught.value.extra["errors"][0]["field"] == "limit"


def _audit(db: Database, workspace_id: int, n: int, *, at: datetime = T0, step: timedelta = timedelta(0)) -> None:
    with db.unit_of_work() as session:
        for i in range(n):
            session.add(
                AuditEntry(workspace_id=workspace_id, actor="pagination", action=f"a{i}", subject_type="t",
                           subject_id=str(i), data={}, at=at + step * i)
            )


def test_paginate_by_id_walks_every_row_once(db: Database, tenant: Tenant) -> None:
    _audit(db, tenant.workspace_id, 7)
    stmt = select(AuditEntry).where(AuditEntry.workspace_id == tenant.workspace_id, AuditEntry.actor == "pagination")
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    with db.unit_of_work(read_only=True) as session:
        while True:
            rows, cursor = paginate_by_id(session, stmt, AuditEntry.id, cursor=cursor, limit=3)
            pages += 1
            seen.extend(r.id for r in rows)
            if cursor is None:
                break
        assert pages == 3
        assert seen == sorted(seen, reverse=True)
        assert len(set(seen)) == 7
        # Ascending order, and a new row inserted mid-walk never shifts the pages already served.
        first, cursor = paginate_by_id(session, stmt, AuditEntry.id, cursor=None, limit=4, descending=False)
    _audit(db, tenant.workspace_id, 1)
    with db.unit_of_work(read_only=True) as session:
        rest, end = paginate_by_id(session, stmt, AuditEntry.id, cursor=cursor, limit=10, descending=False)
    assert [r.id for r in first + rest] == [*sorted(seen), max(seen) + 1]
    assert end is None


def test_exact_page_has_no_next_cursor(db: Database, tenant: Tenant) -> None:
    _audit(db, tenant.workspace_id, 3)
    stmt = select(AuditEntry).where(AuditEntry.actor == "pagination")
    with db.unit_of_work(read_only=True) as session:
        rows, cursor = paginate_by_id(session, stmt, AuditEntry.id, cursor=None, limit=3)
    assert len(rows) == 3
    assert cursor is None


def test_cursor_of_another_shape_is_refused(db: Database) -> None:
    with db.unit_of_work(read_only=True) as session, pytest.raises(ValidationFailed):
        paginate_by_id(session, select(AuditEntry), AuditEntry.id, cursor=encode_cursor(["x"]), limit=5)


@pytest.mark.parametrize("descending", [True, False])
def test_keyset_after_on_a_composite_order_with_ties(db: Database, tenant: Tenant, descending: bool) -> None:
    # Three rows share each timestamp: the id breaks ties, so no row is skipped or repeated.
    for hour in range(3):
        _audit(db, tenant.workspace_id, 3, at=T0 + timedelta(hours=hour))
    columns = [AuditEntry.at, AuditEntry.id]
    order = [c.desc() if descending else c.asc() for c in columns]
    base = select(AuditEntry).where(AuditEntry.actor == "pagination").order_by(*order)
    walked: list[int] = []
    last: tuple[datetime, int] | None = None
    with db.unit_of_work(read_only=True) as session:
        everything = [r.id for r in session.scalars(base)]
        while True:
            stmt = base if last is None else base.where(keyset_after(columns, last, descending=descending))
            page = list(session.scalars(stmt.limit(2)))
            if not page:
                break
            walked.extend(r.id for r in page)
            last = (page[-1].at, page[-1].id)
    assert walked == everything
    assert len(walked) == 9
