"""Precomputed analytics for dashboard tests: the analytics domain's own computation on simulated
purchase histories (the analytics benchmark's generator), stored as the refresh stores them."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import insert

from patronage.analytics import compute
from patronage.analytics.calendar import Period
from patronage.analytics.engine import DuckEngine
from patronage.analytics.extract import open_store
from patronage.analytics.models import AnalyticsRefresh, AnalyticsResult
from patronage.kit.clock import utcnow
from patronage.kit.db import Database


@lru_cache(maxsize=4)
def results(customers: int = 3000, seed: int = 7) -> tuple[dict[str, dict[str, Any]], date]:
    """Monthly KPIs, cohorts, lifecycle, funnel, program impact and RFM for ``customers`` simulated ones."""
    from bench.bench_analytics import AS_OF, generate

    store = open_store(None)
    try:
        generate(store, customers, seed)
        options = compute.Options(as_of=AS_OF, kpi_periods=(Period.MONTH,), cohort_periods=(Period.MONTH,))
        computed = compute.compute_all(DuckEngine(store), options)
    finally:
        store.close()
    return computed.results, AS_OF


def store(db: Database, workspace_id: int, customers: int = 3000) -> int:
    """Write the results (and a succeeded refresh) into the workspace; returns how many results."""
    payloads, as_of = results(customers)
    now = utcnow()
    rows = [{"workspace_id": workspace_id, "key": key, "payload": payload, "computed_at": now, "as_of": as_of,
             "created_at": now, "updated_at": now} for key, payload in payloads.items()]
    with db.unit_of_work() as session:
        for start in range(0, len(rows), 100):
            session.execute(insert(AnalyticsResult), rows[start : start + 100])
        session.add(AnalyticsRefresh(workspace_id=workspace_id, status="succeeded", full=True, started_at=now,
                                     finished_at=now, rows_extracted={}, timings={}))
    return len(rows)
