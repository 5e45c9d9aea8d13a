"""Repository base: every query a domain runs is scoped to one workspace, by construction."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from patronage.kit.errors import NotFound
from patronage.kit.models import WorkspaceScoped

M = TypeVar("M", bound=WorkspaceScoped)


class WorkspaceRepository(Generic[M]):
    """Subclasses set ``model``; there is no unscoped query method on purpose."""

    model: type[M]
    not_found_code = "not_found"

    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def select(self) -> Select[M]:
        return select(self.model).where(self.model.workspace_id == self.workspace_id)

    def get(self, id_: int, *, for_update: bool = False) -> M | None:
        stmt = self.select().where(self.model.id == id_)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def get_or_404(self, id_: int, *, for_update: bool = False) -> M:
        # Another workspace's object is indistinguishable from a missing one: no existence leak.
        obj = self.get(id_, for_update=for_update)
        if obj is None:
            raise NotFound(f"{self.model.__tablename__.rstrip('s')} {id_} not found")
        return obj

    def add(self, obj: M) -> M:
        if obj.workspace_id != self.workspace_id:
            raise ValueError("object belongs to another workspace")
        self.session.add(obj)
        self.session.flush()
        return obj

    def new(self, **values: Any) -> M:
        return self.add(self.model(workspace_id=self.workspace_id, **values))
