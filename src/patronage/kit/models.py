"""Declarative base for every domain model: ids, timestamps, and a constraint naming convention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, MetaData, PrimaryKeyConstraint, Table, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.types import BigId, UTCDateTime

# Deterministic constraint names make migrations reproducible on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class Model(IdMixin, TimestampMixin, Base):
    """A plain entity with an integer id and created/updated timestamps."""

    __abstract__ = True


class WorkspaceScoped(Model):
    """An entity owned by exactly one workspace; repositories filter on ``workspace_id`` always.

    ``workspace_id`` gets an index of its own only where no other index or unique constraint of the
    table starts with it: a composite one serves every look-up by workspace (and the cascade from a
    deleted workspace) as well, and each extra index is one more B-tree to write on every insert.
    """

    __abstract__ = True

    workspace_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table) and not led_by(table, "workspace_id"):
            Index(f"ix_{table.name}_workspace_id", table.c.workspace_id)


def led_by(table: Table, column: str) -> bool:
    """Whether an index, unique constraint or primary key of ``table`` has ``column`` first."""
    keys = [list(index.columns) for index in table.indexes]
    keys += [list(constraint.columns) for constraint in table.constraints
             if isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint)]
    return any(key and key[0].name == column for key in keys)
