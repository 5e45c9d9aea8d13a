"""Alembic environment: the models' metadata from every domain, the URL from Settings (or the caller)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from patronage import domains
from patronage.kit.models import Base

domains.load_models()
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table rebuilds to ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `patronage migrate` (kit/migrate.py)")
run(connection)
