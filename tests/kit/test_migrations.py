"""The migrations build exactly the models' schema, on SQLite and on PostgreSQL.

A fresh ``alembic upgrade head`` (``patronage migrate``) on an empty database must leave nothing for
autogenerate to find: a model changed without its migration fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from patronage import domains
from patronage.config import Settings
from patronage.kit import migrate
from patronage.kit.db import make_database
from patronage.kit.models import Base
from tests.conftest import POSTGRES_ADMIN_URL

# The options src/patronage/migrations/env.py configures autogenerate with.
COMPARE_OPTIONS: dict[str, Any] = {"compare_type": True}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        db = make_database(Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}"))
        yield db.engine
        db.dispose()
        return
    if not POSTGRES_ADMIN_URL:
        pytest.skip("PostgreSQL not reachable")
    name = f"patronage_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(POSTGRES_ADMIN_URL).set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_head_matches_the_models(empty_engine: Engine) -> None:
    domains.load_models()
    migrate.upgrade(empty_engine)
    assert migrate.is_current(empty_engine)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"target_metadata": Base.metadata, **COMPARE_OPTIONS})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], "models and migrations disagree; run `patronage make-migration -m ...`:\n" + "\n".join(
        map(str, diff)
    )


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    db = make_database(Settings(database_url=f"sqlite:///{tmp_path / 'twice.db'}"))
    try:
        migrate.upgrade(db.engine)
        migrate.upgrade(db.engine)
        assert migrate.is_current(db.engine)
    finally:
        db.dispose()
