"""psycopg's statement-conversion cache covers the multi-row statements of the request path (kit/db.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from patronage.kit.db import PSYCOPG_CACHED_STATEMENT_PARAMS, Database, cache_large_statements
from patronage.kit.jobs.models import DomainEvent
from tests.conftest import Tenant


def test_the_limits_are_raised_in_the_psycopg_installed() -> None:
    from psycopg import _queries

    # False would mean this psycopg renamed its limits: the cache would silently stop covering them.
    assert cache_large_statements() is True
    assert _queries.MAX_CACHED_STATEMENT_PARAMS >= PSYCOPG_CACHED_STATEMENT_PARAMS


def test_a_multi_row_insert_is_converted_once(db: Database, tenant: Tenant) -> None:
    if db.dialect != "postgresql":
        pytest.skip("psycopg is PostgreSQL's driver")
    from psycopg import _queries

    rows = [{"uid": f"evt_cache_{i:02d}", "workspace_id": tenant.workspace_id, "type": "t", "payload": {}}
            for i in range(12)]  # 60 parameters: above psycopg's own limit of 50
    statement = insert(DomainEvent).returning(DomainEvent.id)
    with db.unit_of_work() as session:
        session.execute(statement, rows).all()
        before = _queries._query2pg.cache_info()
        session.execute(statement, [{**r, "uid": r["uid"] + "a"} for r in rows]).all()  # the same shape
        after = _queries._query2pg.cache_info()
    assert after.hits > before.hits
    with db.unit_of_work(read_only=True) as session:
        assert len(session.scalars(select(DomainEvent.id).where(DomainEvent.type == "t")).all()) == 24
