"""Analytics: refreshing the precomputed results, and reading them for dashboards, reports and goals."""

from __future__ import annotations

import bisect
import logging
import time
import traceback
from datetime import date, datetime, timedelta
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from patronage.analytics import compute, scoring, sources
from patronage.analytics.calendar import Period
from patronage.analytics.engine import DuckEngine
from patronage.analytics.extract import extract, open_store
from patronage.analytics.kpis import CATALOG, NOT_AVAILABLE, Kpi
from patronage.analytics.models import AnalyticsRefresh, AnalyticsResult, CustomerScores
from patronage.analytics.repository import RefreshRepository, ResultRepository
from patronage.analytics.schemas import KpiGroupSeries, KpiInfoOut, KpiSeriesOut, PeriodName
from patronage.analytics.settings import AnalyticsSettings, get_analytics_settings
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.errors import NotFound, field_error
from patronage.kit.jobs import enqueue
from patronage.kit.upsert import insert_rows
from patronage.segments.models import Segment
from patronage.workspaces.models import Workspace

log = logging.getLogger("patronage.analytics")
REFRESH_TASK = "analytics.refresh"
SCORE_CHUNK = 20_000  # scores per transaction


# ---- reading precomputed results --------------------------------------------------------------------
def kpi_catalog() -> list[KpiInfoOut]:
    return [
        KpiInfoOut(kpi=i.kpi.value, formula=i.formula, unit=i.unit, higher_is_better=i.higher_is_better,
                   available=i.kpi not in NOT_AVAILABLE, note=NOT_AVAILABLE.get(i.kpi))
        for i in CATALOG.values()
    ]


def read_result(session: Session, workspace_id: int, key: str) -> AnalyticsResult:
    result = ResultRepository(session, workspace_id).by_key(key)
    if result is None:
        if not ResultRepository(session, workspace_id).keys():
            raise NotFound("no analytics computed yet for this workspace; POST /api/v1/analytics/refresh")
        raise NotFound(f"no precomputed result {key!r}")
    return result


def kpi_series(
    session: Session, workspace_id: int, *, kpi: Kpi, period: PeriodName, breakdown: str | None,
    start: date | None = None, end: date | None = None,
) -> KpiSeriesOut:
    if start and end and start > end:
        raise field_error("from", "must not be after 'to'")
    result = read_result(session, workspace_id, f"kpi/{period}/{breakdown or 'all'}/{kpi.value}")
    payload = result.payload
    starts: list[str] = payload["starts"]
    # ISO dates sort as text: slice the period range without parsing every date.
    low = 0 if start is None else bisect.bisect_left(starts, _period_floor(start, period).isoformat())
    high = len(starts) if end is None else bisect.bisect_right(starts, end.isoformat())
    series = [
        KpiGroupSeries.model_construct(group=group, values=values[low:high])
        for group, values in sorted(payload["groups"].items())
    ]
    return KpiSeriesOut.model_construct(
        kpi=kpi.value, period=period, breakdown=breakdown, formula=payload["formula"],
        note=payload.get("note"), computed_at=result.computed_at, periods=payload["labels"][low:high],
        starts=[date.fromisoformat(s) for s in starts[low:high]], partial=payload["partial"][low:high],
        series=series,
    )


def _period_floor(day: date, period: str) -> date:
    from patronage.analytics.calendar import period_start

    return period_start(day, Period(period))


def cohort_table(
    session: Session, workspace_id: int, *, period: str, metric: str, mode: str, relative: bool
) -> dict[str, Any]:
    """The cohort matrix: rows are cohorts, column n is period n after acquisition.

    ``mode="in"``: customers (or revenue) active *in* period n; ``"in_or_after"``: in period n or later.
    ``relative``: divide by the cohort's size (customers) or its period-0 revenue.
    """
    payload = read_result(session, workspace_id, f"cohorts/{period}").payload
    key = metric if mode == "in" else f"{metric}_in_or_after"
    rows = []
    for cohort in payload["cohorts"]:
        values = cohort[key]
        base = cohort["customers"][0] if metric == "customers" else cohort["revenue"][0]
        if relative:
            values = [round(v / base, 10) if base else None for v in values]
        rows.append({"cohort": cohort["cohort"], "start": cohort["start"], "size": cohort["size"], "values": values})
    return {"period": period, "metric": metric, "mode": mode, "relative": relative, "cohorts": rows}


# ---- refreshing -------------------------------------------------------------------------------------
def request_refresh(session: Session, workspace_id: int, *, full: bool = False) -> AnalyticsRefresh:
    """Queue a refresh job, or return the one already waiting."""
    repo = RefreshRepository(session, workspace_id)
    waiting = repo.waiting()
    if waiting is not None:
        return waiting
    refresh = repo.new(status="queued", full=full, rows_extracted={}, timings={})
    refresh.job_id = enqueue(
        session, REFRESH_TASK, {"refresh_id": refresh.id, "full": full}, workspace_id=workspace_id,
        unique_key=f"analytics:refresh:{workspace_id}",
    )
    session.flush()
    return refresh


def latest_refresh(session: Session, workspace_id: int) -> AnalyticsRefresh:
    refresh = RefreshRepository(session, workspace_id).latest()
    if refresh is None:
        raise NotFound("analytics have never been refreshed in this workspace")
    return refresh


def local_today(timezone: str) -> date:
    return utcnow().astimezone(ZoneInfo(timezone)).date()


def _start(db: Database, workspace_id: int, refresh_id: int | None, full: bool) -> tuple[int, str, dict[str, str]]:
    """Mark the refresh running; returns its id, the workspace time zone and the segment names."""
    with db.unit_of_work() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {workspace_id} not found")
        repo = RefreshRepository(session, workspace_id)
        refresh = repo.get(refresh_id) if refresh_id else None
        if refresh is None:
            refresh = repo.new(status="queued", full=full, rows_extracted={}, timings={})
        refresh.status, refresh.started_at = "running", utcnow()
        names = session.execute(select(Segment.id, Segment.name).where(Segment.workspace_id == workspace_id))
        return refresh.id, workspace.timezone, {str(i): n for i, n in names}


def _finish(db: Database, workspace_id: int, refresh_id: int, **values: Any) -> None:
    with db.unit_of_work() as session:
        refresh = RefreshRepository(session, workspace_id).get(refresh_id)
        if refresh is not None:
            for name, value in values.items():
                setattr(refresh, name, value)
            refresh.finished_at = utcnow()


def _compute(
    db: Database, store: duckdb.DuckDBPyConnection, options: compute.Options, settings: AnalyticsSettings
) -> tuple[dict[str, dict[str, Any]], pa.Table | None, dict[str, float]]:
    engine = DuckEngine(store)
    computed = compute.compute_all(engine, options)
    timings = dict(computed.timings)
    scores: pa.Table | None = None
    model_info: dict[str, Any] = {}
    if computed.has_data:
        begin = time.perf_counter()
        scores, summary = scoring.score_customers(
            engine, options, horizon_months=settings.clv_horizon_months, discount_rate=settings.clv_discount_rate,
        )
        timings["scoring"] = round(time.perf_counter() - begin, 4)
        model_info = {"fitted": summary.fitted, "reason": summary.reason, "bgnbd": summary.bgnbd,
                      "gamma_gamma": summary.gamma_gamma}
    computed.results["models"] = model_info
    return computed.results, scores, timings


def run_refresh(
    db: Database,
    workspace_id: int,
    *,
    refresh_id: int | None = None,
    full: bool = False,
    store: duckdb.DuckDBPyConnection | None = None,
    settings: AnalyticsSettings | None = None,
    as_of: date | None = None,
) -> int:
    """Extract, compute, store the results and write the customer scores; returns the refresh id.

    Runs in its own transactions (the caller's job transaction holds nothing): the results of a
    workspace are replaced in one transaction, so readers see either the old or the new set.
    """
    settings = settings or get_analytics_settings()
    refresh_id, timezone, segment_names = _start(db, workspace_id, refresh_id, full)
    own_store = store is None
    if store is None:
        path = settings.store_path(workspace_id)
        store = open_store(str(path) if path else None)
    try:
        start = time.perf_counter()
        stats = extract(db, store, workspace_id, timezone, full=full, chunk_rows=settings.extract_chunk_rows,
                        overlap=timedelta(minutes=settings.extract_overlap_minutes))
        extract_s = round(time.perf_counter() - start, 4)
        options = compute.Options(
            as_of=as_of or local_today(timezone),
            active_window_days=settings.active_window_days,
            loyal_min_orders=settings.loyal_min_orders,
            advocacy_event_types=tuple(settings.advocacy_event_types),
            kpi_periods=tuple(Period(p) for p in settings.kpi_periods),
            cohort_periods=tuple(Period(p) for p in settings.cohort_periods),
            segment_names=segment_names,
            members_available=sources.available("members"),
        )
        results, scores, timings = _compute(db, store, options, settings)
        timings["extract"] = extract_s
        begin = time.perf_counter()
        _store_results(db, workspace_id, results, options.as_of)
        if scores is not None:
            write_scores(db, workspace_id, scores)
        timings["store"] = round(time.perf_counter() - begin, 4)
        _finish(db, workspace_id, refresh_id, status="succeeded", rows_extracted=stats.rows, timings=timings)
    except Exception as exc:
        log.exception("analytics refresh failed", extra={"workspace_id": workspace_id})
        _finish(db, workspace_id, refresh_id, status="failed",
                error="".join(traceback.format_exception_only(exc)).strip()[:4000])
        raise
    finally:
        if own_store:
            store.close()
    return refresh_id


def _store_results(db: Database, workspace_id: int, results: dict[str, dict[str, Any]], as_of: date) -> None:
    now = utcnow()
    with db.unit_of_work() as session:
        ResultRepository(session, workspace_id).delete_all()
        rows = [
            {"workspace_id": workspace_id, "key": key, "payload": payload, "computed_at": now, "as_of": as_of,
             "created_at": now, "updated_at": now}
            for key, payload in results.items()
        ]
        for chunk in range(0, len(rows), 100):
            session.execute(insert(AnalyticsResult), rows[chunk : chunk + 100])


# customer_scores columns in the order write_scores hands them to the driver.
_SCORE_COLUMNS = (
    "customer_id", "workspace_id", "rfm_r", "rfm_f", "rfm_m", "rfm_segment", "recency_days", "frequency",
    "monetary", "p_alive", "expected_purchases_90d", "expected_clv", "churn_risk", "updated_at",
)


def write_scores(db: Database, workspace_id: int, scores: pa.Table) -> int:
    """Replace the workspace's customer scores, a chunk per short transaction (portable upsert).

    Each chunk is one DELETE by id and one bulk insert (``COPY`` on PostgreSQL, one ``executemany`` on
    SQLite, via kit.upsert): a million customers' scores are written in seconds, not minutes.
    """
    from patronage.customers.models import Customer

    stamp: datetime = utcnow()
    table = CustomerScores.__table__
    assert isinstance(table, Table)
    written = 0
    # Sorted by id, each chunk covers its own id range: range predicates use the primary keys and stay
    # small statements (no 20,000-parameter IN lists). An id inside a range but without a score has none
    # now, so deleting its old score is what the final sweep would do anyway.
    for batch in scores.sort_by("customer_id").to_batches(max_chunksize=SCORE_CHUNK):
        col = batch.to_pydict()
        ids: list[int] = col["customer_id"]
        if not ids:
            continue
        low, high = ids[0], ids[-1]
        with db.unit_of_work() as session:
            # Scores of profiles erased or merged meanwhile would violate the foreign key: skip them.
            alive = set(session.scalars(select(Customer.id).where(
                Customer.workspace_id == workspace_id, Customer.id >= low, Customer.id <= high
            )))
            session.execute(delete(CustomerScores).where(
                CustomerScores.workspace_id == workspace_id, CustomerScores.customer_id >= low,
                CustomerScores.customer_id <= high,
            ))
            rows = [
                row for row in zip(
                    ids, repeat(workspace_id), col["r"], col["f"], col["m"], col["segment"], col["recency_days"],
                    col["frequency"], col["monetary"], col["p_alive"], col["expected_purchases_90d"],
                    col["expected_clv"], repeat(None), repeat(stamp),
                )
                if row[0] in alive
            ]
            insert_rows(session, table, _SCORE_COLUMNS, rows)
            written += len(rows)
    with db.unit_of_work() as session:
        session.execute(delete(CustomerScores).where(
            CustomerScores.workspace_id == workspace_id, CustomerScores.updated_at < stamp
        ))
    return written
