"""Reads the dashboard needs that the domains do not offer yet, built on their repositories.

``results_by_keys`` belongs in analytics/repository.py (``ResultRepository.by_keys``: one query for many
keys).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from patronage.analytics.models import AnalyticsRefresh, AnalyticsResult
from patronage.analytics.repository import RefreshRepository, ResultRepository


def results_by_keys(session: Session, workspace_id: int, keys: Sequence[str]) -> dict[str, AnalyticsResult]:
    repo = ResultRepository(session, workspace_id)
    rows = session.scalars(repo.select().where(AnalyticsResult.key.in_(list(keys))))
    return {row.key: row for row in rows}


def latest_refresh(session: Session, workspace_id: int) -> AnalyticsRefresh | None:
    return RefreshRepository(session, workspace_id).latest()

