"""Queries for the analytics tables; each scoped to one workspace."""

from __future__ import annotations

from sqlalchemy import delete, select

from patronage.analytics.models import AnalyticsRefresh, AnalyticsResult, KpiGoal
from patronage.kit.repository import WorkspaceRepository


class ResultRepository(WorkspaceRepository[AnalyticsResult]):
    model = AnalyticsResult

    def by_key(self, key: str) -> AnalyticsResult | None:
        return self.session.scalars(self.select().where(AnalyticsResult.key == key)).one_or_none()

    def keys(self) -> list[str]:
        stmt = select(AnalyticsResult.key).where(AnalyticsResult.workspace_id == self.workspace_id)
        return list(self.session.scalars(stmt))

    def delete_all(self) -> None:
        self.session.execute(delete(AnalyticsResult).where(AnalyticsResult.workspace_id == self.workspace_id))


class RefreshRepository(WorkspaceRepository[AnalyticsRefresh]):
    model = AnalyticsRefresh

    def latest(self) -> AnalyticsRefresh | None:
        stmt = self.select().order_by(AnalyticsRefresh.id.desc()).limit(1)
        return self.session.scalars(stmt).one_or_none()

    def waiting(self) -> AnalyticsRefresh | None:
        stmt = self.select().where(AnalyticsRefresh.status == "queued").order_by(AnalyticsRefresh.id).limit(1)
        return self.session.scalars(stmt).one_or_none()


class GoalRepository(WorkspaceRepository[KpiGoal]):
    model = KpiGoal

    def all(self) -> list[KpiGoal]:
        return list(self.session.scalars(self.select().order_by(KpiGoal.id)))
