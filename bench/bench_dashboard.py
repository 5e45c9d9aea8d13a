"""Dashboard latency for a workspace of 1,000,000 customers, with a reference measured in the same run.

    python -m bench.bench_dashboard [--customers 1000000] [--requests 200] [--ledger/--no-ledger] [--db PATH]

Set-up (SQLite in a temporary directory, schema from the models):

* the workspace gets ``--customers`` customer rows (so that any page scanning customers would show it)
  and, with ``--ledger``, one point account and one open point lot per customer;
* its precomputed analytics are the analytics domain's own: the analytics benchmark's generator simulates
  the customers' purchase histories (about 12 orders each) in DuckDB, ``compute.compute_all`` computes
  KPIs (weekly and monthly, every breakdown), cohorts, lifecycle, funnel, program impact and RFM, and the
  results are stored as a refresh stores them.

Measured against ``uvicorn patronage.asgi:app`` (one process, no worker) with a signed-in staff session,
one request at a time (latency, not throughput): ``GET /`` (the dashboard HTML; its chart data is inline),
``GET /console/dashboard.json`` (the same data as JSON), ``GET /console/dashboard/liability`` (the points
liability fragment the page loads after it: a live ledger report, not precomputed) and the page as a
browser loads it (``/`` then the fragment). References in the same run: ``GET /healthz`` and a static file.
The target: ``GET /`` p95 <= 300 ms. Also checked in-process: no SQL statement of ``GET /`` reads the
customers table.
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


def statements_touching_customers(db_url: str) -> dict[str, Any]:
    """Serve one GET / in-process and list the SQL it runs: the dashboard must not read customers."""
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
    return {"statements": len(seen), "statements_reading_customers": len(reads_customers)}


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
        if path.exists():  # --db of an earlier run: measure again without rebuilding
            setup: dict[str, Any] = {"reused": str(path)}
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
                "liability_fragment": ["/console/dashboard/liability"],
                "page_with_fragment": ["/", "/console/dashboard/liability"],
                "reference_healthz": ["/healthz"],
                "reference_static_css": ["/static/app.css"],
            }
            results = {name: timed(client, paths, args.requests, args.warmup) for name, paths in sides.items()}
            size = len(client.get("/").content)
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
        "pass": p95 <= TARGET_P95_MS and checked["statements_reading_customers"] == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ledger", action=argparse.BooleanOptionalAction, default=True,
                        help="one point account and one open lot per customer (the liability fragment reads them)")
    parser.add_argument("--periods", nargs="+", default=["week", "month"], choices=["day", "week", "month"])
    parser.add_argument("--db", help="keep the built SQLite database at this path; reuse it when it exists")
    emit(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
