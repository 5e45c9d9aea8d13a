"""Dashboard latency for a workspace of 1,000,000 customers, with a reference measured in the same run.

    python -m bench.bench_dashboard [--customers 1000000] [--requests 200] [--ledger/--no-ledger] [--db PATH]

Set-up (SQLite in a temporary directory, schema from the models):

* the workspace gets ``--customers`` customer rows (so that any page scanning customers would show it)
  and, with ``--ledger``, one point account and one open point lot per customer, and the liability
  domain's snapshot of them (``liability.service.take_snapshot``, what the half-hourly job runs; its
  cost is reported as ``setup.liability_snapshot_s``);
* its precomputed analytics are the analytics domain's own: the analytics benchmark's generator simulates
  the customers' purchase histories (about 12 orders each) in DuckDB, ``compute.compute_all`` computes
  KPIs (weekly and monthly, every breakdown), cohorts, lifecycle, funnel, program impact and RFM, and the
  results are stored as a refresh stores them.

Measured against ``uvicorn patronage.asgi:app`` (one process, no worker) with a signed-in staff session,
one request at a time (latency, not throughput): ``GET /`` (the dashboard HTML: its chart data and the
points liability card are inline), ``GET /console/dashboard.json`` (the chart data as JSON) and
``GET /console/dashboard/liability`` (the liability card alone, what it polls after "Recompute now").
References in the same run: ``GET /healthz``, a static file, and the live liability report the card used
to compute per request (``GET /api/v1/reports/liability``, fewer requests: it reads every open lot).
The target: ``GET /`` p95 <= 300 ms. Also checked in-process: no SQL statement of ``GET /`` reads the
customers table or the ledger's tables.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bench._util import Server, base_env, emit, machine, percentile, temp_dir

TARGET_P95_MS = 300.0
CHUNK = 50_000


def build(db_url: str, customers: int, *, ledger: bool, periods: tuple[str, ...], seed: int) -> dict[str, Any]:
    """The database: schema, workspace, owner, customers (and ledger rows), precomputed analytics."""
    from sqlalchemy import insert

    from bench.bench_analytics import AS_OF, generate
    from patronage import domains
    from patronage.analytics import compute
    from patronage.analytics.calendar import Period
    from patronage.analytics.engine import DuckEngine
    from patronage.analytics.extract import open_store
    from patronage.analytics.models import AnalyticsRefresh, AnalyticsResult
    from patronage.config import Settings
    from patronage.customers.models import Customer
    from patronage.kit.clock import utcnow
    from patronage.kit.db import make_database
    from patronage.kit.models import Base
    from patronage.workspaces import service
    from patronage.workspaces.permissions import Role
    from patronage.workspaces.schemas import WorkspaceCreate

    timings: dict[str, float] = {}
    started = time.perf_counter()
    domains.load_tasks()
    import patronage.web.console.dashboard  # noqa: F401 - every table the web reads

    db = make_database(Settings(database_url=db_url, sqlite_synchronous="OFF"))
    Base.metadata.create_all(db.engine)
    with db.unit_of_work() as session:
        workspace = service.create_workspace(session, WorkspaceCreate(name="Bench Shop", slug="bench",
                                                                      currency="EUR"))
        user = service.create_user(session, email="owner@bench.example.com", password="bench-password-1")
        service.add_member(session, workspace.id, user, Role.OWNER, actor="bench")
        workspace_id = workspace.id
    now = utcnow()
    for start in range(0, customers, CHUNK):
        rows = [{"workspace_id": workspace_id, "external_id": f"c-{i}", "email": f"c{i}@example.com", "tags": [],
                 "attributes": {}, "orders_count": 0, "total_spent": 0, "lifecycle_stage": "active",
                 "created_at": now, "updated_at": now} for i in range(start, min(start + CHUNK, customers))]
        with db.unit_of_work() as session:
            session.execute(insert(Customer), rows)
    timings["customers_s"] = round(time.perf_counter() - started, 1)
    if ledger:
        began = time.perf_counter()
        _ledger_rows(db, workspace_id, customers)
        timings["ledger_s"] = round(time.perf_counter() - began, 1)
        timings["liability_snapshot_s"] = _snapshot(db, workspace_id)

    began = time.perf_counter()
    store = open_store(None)
    generated = generate(store, customers, seed)
    wanted = tuple(Period(p) for p in periods)
    options = compute.Options(as_of=AS_OF, kpi_periods=wanted, cohort_periods=wanted)
    results = compute.compute_all(DuckEngine(store), options).results
    store.close()
    timings["analytics_compute_s"] = round(time.perf_counter() - began, 1)
    rows = [{"workspace_id": workspace_id, "key": key, "payload": payload, "computed_at": now, "as_of": AS_OF,
             "created_at": now, "updated_at": now} for key, payload in results.items()]
    with db.unit_of_work() as session:
        for start in range(0, len(rows), 100):
            session.execute(insert(AnalyticsResult), rows[start : start + 100])
        session.add(AnalyticsRefresh(workspace_id=workspace_id, status="succeeded", full=True, started_at=now,
                                     finished_at=now, rows_extracted=generated, timings={}))
    db.dispose()
    return {"workspace_id": workspace_id, "analytics_results": len(rows), "simulated": generated, **timings}


def _ledger_rows(db: Any, workspace_id: int, customers: int) -> None:
    """One account and one open lot (100 points, earned over the last two years) per customer."""
    from sqlalchemy import insert, select

    from patronage.customers.models import Customer
    from patronage.kit.clock import utcnow
    from patronage.ledger.models import LedgerTransaction, PointAccount, PointLot

    now = utcnow()
    with db.unit_of_work() as session:
        first = select(Customer.id).where(Customer.workspace_id == workspace_id).order_by(Customer.id)
        first_id = session.scalar(first)
    for start in range(0, customers, CHUNK):
        ids = range(first_id + start, first_id + min(start + CHUNK, customers))
        with db.unit_of_work() as session:
            session.execute(insert(PointAccount), [
                {"workspace_id": workspace_id, "customer_id": cid, "available": 100, "pending": 0, "clawback": 0,
                 "lifetime_earned": 100, "lifetime_spent": 0, "created_at": now, "updated_at": now} for cid in ids])
            accounts = dict(session.execute(select(PointAccount.customer_id, PointAccount.id).where(
                PointAccount.workspace_id == workspace_id, PointAccount.customer_id.in_(list(ids)))).all())
            txns = session.execute(insert(LedgerTransaction).returning(LedgerTransaction.id), [
                {"workspace_id": workspace_id, "account_id": accounts[cid], "customer_id": cid, "kind": "earn",
                 "points": 100, "source_type": "bench", "source_id": str(cid), "reason": "bench", "actor": "bench",
                 "occurred_at": now, "data": {}, "created_at": now, "updated_at": now} for cid in ids]).scalars().all()
            session.execute(insert(PointLot), [
                {"workspace_id": workspace_id, "account_id": accounts[cid], "customer_id": cid, "transaction_id": txn,
                 "amount": 100,
                 "remaining": 100, "earned_at": now - timedelta(days=cid % 730), "available_at": now,
                 "released_at": now, "expires_at": None, "created_at": now, "updated_at": now}
                for cid, txn in zip(ids, txns, strict=True)])


def _snapshot(db: Any, workspace_id: int) -> float:
    """The liability snapshot job's work (read the ledger on a reader, store the figures); its seconds."""
    from patronage.liability import service as liability

    began = time.perf_counter()
    with db.unit_of_work(read_only=True) as reader, db.unit_of_work() as writer:
        liability.take_snapshot(reader, writer, workspace_id)
    return round(time.perf_counter() - began, 1)


def _snapshot_of(db_url: str) -> float:
    from patronage import domains
    from patronage.config import Settings
    from patronage.kit.db import make_database
    from patronage.workspaces.repository import get_workspace_by_slug

    domains.load_tasks()
    db = make_database(Settings(database_url=db_url))
    with db.unit_of_work(read_only=True) as session:
        workspace = get_workspace_by_slug(session, "bench")
        assert workspace is not None
        workspace_id = workspace.id
    seconds = _snapshot(db, workspace_id)
    db.dispose()
    return seconds


LEDGER_TABLES = r"\b(FROM|JOIN) (point_accounts|point_lots|ledger_entries|ledger_transactions|point_lot_allocations)\b"


def statements_touching_customers(db_url: str) -> dict[str, Any]:
    """Serve one GET / in-process and list the SQL it runs: the dashboard must read neither the customers
    nor the ledger (its figures are precomputed)."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from patronage.app import create_app
    from patronage.config import Settings

    settings = Settings(database_url=db_url, cookie_secure=False, secret_key="bench-secret-key-0123456789")
    app = create_app(settings)
    seen: list[str] = []
    with TestClient(app) as client:
        sign_in(client)
        engines = {app.state.db.engine, app.state.db.read_engine}
        for engine in engines:
            event.listen(engine, "before_cursor_execute", lambda *a: seen.append(str(a[2])))
        assert client.get("/").status_code == 200
    reads_customers = [s for s in seen if re.search(r"\bFROM customers\b|\bJOIN customers\b", s)]
    reads_ledger = [s for s in seen if re.search(LEDGER_TABLES, s)]
    assert any("liability_snapshots" in s for s in seen), "the dashboard did not read the liability snapshot"
    return {"statements": len(seen), "statements_reading_customers": len(reads_customers),
            "statements_reading_ledger": len(reads_ledger)}


def sign_in(client: Any, base: str = "") -> None:
    page = client.get(f"{base}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    response = client.post(f"{base}/login", data={"email": "owner@bench.example.com", "password": "bench-password-1",
                                                  "csrf_token": token.group(1)}, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]


def timed(client: httpx.Client, paths: list[str], n: int, warmup: int) -> dict[str, float]:
    latencies: list[float] = []
    for i in range(n + warmup):
        t0 = time.perf_counter()
        for path in paths:
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        if i >= warmup:
            latencies.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "mean_ms": round(statistics.fmean(latencies), 2), "max_ms": round(max(latencies), 2), "requests": n}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with temp_dir() as tmp:
        path = Path(args.db) if args.db else tmp / "bench.db"
        db_url = f"sqlite:///{path}"
        if path.exists():  # --db of an earlier run: measure again without rebuilding (a fresh snapshot)
            setup: dict[str, Any] = {"reused": str(path)}
            if args.ledger:
                setup["liability_snapshot_s"] = _snapshot_of(db_url)
        else:
            setup = build(db_url, args.customers, ledger=args.ledger, periods=tuple(args.periods), seed=args.seed)
        checked = statements_touching_customers(db_url)
        env = base_env(PATRONAGE_DATABASE_URL=db_url, PATRONAGE_ENV="production", PATRONAGE_COOKIE_SECURE="false",
                       PATRONAGE_SECRET_KEY="bench-secret-key-0123456789")
        with Server("patronage.asgi:app", env=env) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            sign_in(client)
            sides = {
                "dashboard_html": ["/"],
                "dashboard_json": ["/console/dashboard.json"],
                "liability_card": ["/console/dashboard/liability"],
                "reference_healthz": ["/healthz"],
                "reference_static_css": ["/static/app.css"],
            }
            results = {name: timed(client, paths, args.requests, args.warmup) for name, paths in sides.items()}
            results["reference_live_liability_report"] = timed(client, ["/api/v1/reports/liability"],
                                                                args.reference_requests, 1)
            page = client.get("/").text
            size = len(page)
            card_shown = 'id="liability-as-of"' in page or not args.ledger
    p95 = results["dashboard_html"]["p95_ms"]
    return {
        "bench": "dashboard",
        "what": "GET / (console dashboard) of a 1M-customer workspace from precomputed analytics, signed in",
        "settings": {"customers": args.customers, "requests": args.requests, "warmup": args.warmup,
                     "ledger_rows": args.ledger, "analytics_periods": args.periods,
                     "server": "uvicorn, 1 process, uvloop + httptools, no access log, SQLite"},
        "machine": machine(),
        "setup": setup,
        "dashboard_html_bytes": size,
        "sql_of_get_dashboard": checked,
        **results,
        "target_p95_ms": TARGET_P95_MS,
        "liability_card_on_page": card_shown,
        "pass": p95 <= TARGET_P95_MS and checked["statements_reading_customers"] == 0
        and checked["statements_reading_ledger"] == 0 and card_shown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--reference-requests", type=int, default=5,
                        help="requests of the live liability report (seconds each at a million lots)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ledger", action=argparse.BooleanOptionalAction, default=True,
                        help="one point account and one open lot per customer (the liability snapshot reads them)")
    parser.add_argument("--periods", nargs="+", default=["week", "month"], choices=["day", "week", "month"])
    parser.add_argument("--db", help="keep the built SQLite database at this path; reuse it when it exists")
    emit(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
