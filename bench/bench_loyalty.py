"""Loyalty engine benchmarks (issue "Loyalty engine"), one JSON document on stdout.

(1) ``ingest``: orders through the real HTTP API (``POST /api/v1/orders``, API key, PostgreSQL) at 32
    concurrent connections, earning rules + ledger (+ tiers and every other ``order.recorded``
    subscriber) running in ``patronage worker`` processes (at ``nice 10``, as docs/operations.md
    recommends for workers sharing the machine with HTTP processes; ``--worker-nice 0`` to compare),
    versus a bare reference endpoint (FastAPI + SQLAlchemy, one INSERT + one UPDATE in one transaction)
    on the same PostgreSQL, same uvicorn settings
    and process count, same run. Measured end to end: from the first request until the earn
    transaction of the last order exists (a poller counts them), so the worker's lag is inside the
    number. HTTP latency p50/p99 come from the client. Targets: >= 50 % of the reference's
    throughput, p99 <= 150 ms, zero errors. ``server_cpu_ms`` says what an order costs each side in CPU
    (HTTP processes, job workers, and the PostgreSQL backends of the bench's database), steadier than
    throughput on a shared machine.
(2) ``replay``: the whole CDNOW master log (69,659 orders, 23,570 customers) replayed through the
    engine on SQLite with the bulk path (``earning.replay.replay_orders``: same engine, same ledger
    posting rules as the live handler); target <= 20 s. Loading the orders is not timed.

    python -m bench.bench_loyalty [--part ingest|replay|all] [--orders 3000] [--http-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench._util import ROOT, Server, base_env, emit, machine, patronage_command, percentile, temp_dir

PG_ENV = "PATRONAGE_BENCH_POSTGRES_URL"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RULES: dict[str, Any] = {"stacking": "multiply", "rules": [
    {"key": "base", "name": "1 point per dollar", "effect": {"type": "per_currency", "points": 1}},
    {"key": "welcome", "name": "first order bonus", "when": {"first_order": True},
     "effect": {"type": "fixed", "points": 100}},
    {"key": "weekend", "name": "double points at weekends", "when": {"time": {"days": ["sat", "sun"]}},
     "effect": {"type": "multiplier", "factor": 2}},
    {"key": "big", "name": "big basket bonus", "when": {"field": "order.net", "op": "gte", "value": 100},
     "effect": {"type": "fixed", "points": 25}, "limits": {"per_customer": {"times": 3, "period": "month"}}},
]}
REFERENCE_APP = '''
import os
from fastapi import FastAPI
from sqlalchemy import create_engine, text
engine = create_engine(os.environ["REF_DATABASE_URL"], pool_size=10, max_overflow=20)
app = FastAPI()

@app.get("/healthz")
def healthz():
    return {"status": "ok"}

@app.post("/orders", status_code=201)
def order(body: dict):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ref_orders (external_id, customer, total) VALUES (:e, :c, :t)"),
                     {"e": body["external_id"], "c": body["customer_external_id"], "t": body["lines"][0]["unit_price"]})
        conn.execute(text("UPDATE ref_customers SET orders = orders + 1, spent = spent + :t WHERE id = :c"),
                     {"c": int(body["customer_external_id"].split("-")[1]), "t": body["lines"][0]["unit_price"]})
    return {"status": "created"}
'''


def _setup_workspace(db: Any, tz: str) -> tuple[int, str]:
    from patronage.earning import rulesets
    from patronage.ledger import program
    from patronage.workspaces import service as ws_service
    from patronage.workspaces.permissions import ALL
    from patronage.workspaces.schemas import WorkspaceCreate

    with db.unit_of_work() as s:
        ws = ws_service.create_workspace(s, WorkspaceCreate(name="Bench", slug="bench", timezone=tz, currency="USD"))
        _, secret = ws_service.create_api_key(
            s, ws.id, name="bench", scopes=[p.value for p in ALL], actor="bench",
            actor_permissions=frozenset(p.value for p in ALL), created_by_user_id=None)
        program.update_settings(s, ws.id, {"return_window_days": 30}, actor="bench")
        rule_set = rulesets.create_rule_set(s, ws.id, name="bench", description="", document=RULES, actor="bench")
        rulesets.publish(s, ws.id, rule_set.id, 1, actor="bench")
        return ws.id, secret


# ---- (1) HTTP ingestion on PostgreSQL ---------------------------------------------------------------
def _order(i: int, customers: int) -> dict[str, Any]:
    placed = datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(minutes=i)
    return {"external_id": f"bench-{uuid.uuid4().hex}", "customer_external_id": f"c-{i % customers + 1}",
            "placed_at": placed.isoformat(), "channel": "web",
            "lines": [{"sku": f"SKU{i % 50}", "category": "music", "quantity": 1 + i % 3,
                       "unit_price": f"{10 + i % 90}.99"}]}


async def _send(url: str, headers: dict[str, str], orders: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    queue = list(reversed(orders))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=60)) as client:
        start = time.perf_counter()

        async def worker() -> None:
            while queue:
                body = queue.pop()
                t0 = time.perf_counter()
                try:
                    async with client.post(url, json=body) as response:
                        await response.read()
                        if response.status not in (200, 201):
                            errors.append(f"{response.status}")
                except (TimeoutError, aiohttp.ClientError) as exc:
                    errors.append(type(exc).__name__)
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"start": start, "elapsed_s": elapsed, "requests": len(latencies), "errors": len(errors),
            "error_samples": errors[:5], "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "http_rps": round(len(latencies) / elapsed, 1)}


def _tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes and all their descendants (Linux /proc;
    0 elsewhere). On a shared machine CPU per order is steadier than throughput, and it says where the
    time goes: HTTP server, job workers, the reference."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, cpu seconds)
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    wanted, total = set(pids), 0.0
    grew = True
    while grew:  # descendants: uvicorn --workers forks its workers under the supervisor
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in wanted and pid not in wanted:
                wanted.add(pid)
                grew = True
    for pid in wanted:
        total += stats.get(pid, (0, 0.0))[1]
    return total


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PostgresCpu:
    """CPU seconds of the PostgreSQL backends serving one database (Linux /proc, same machine only).

    PostgreSQL shares the machine's cores with the servers, so its work per order (job rows inserted,
    claimed and marked, the requests' own statements) is part of what an order costs. A thread follows
    the database's backends (``pg_stat_activity``) so that one that exits between marks still counts.
    Shared processes (WAL writer, checkpointer) serve every database on the server and are left out."""

    def __init__(self, engine: Any, database: str) -> None:
        self._engine, self._database = engine, database
        self._cpu: dict[int, list[float]] = {}  # pid -> [cpu at the mark, cpu last seen]
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with self._engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                                {"d": self._database}).scalars().all()
        with self._lock:
            for pid in pids:
                cpu = _proc_cpu(int(pid))
                if cpu is not None:
                    # A backend first seen after the mark started after it (or just before): count all of it.
                    self._cpu.setdefault(int(pid), [0.0, cpu])[1] = cpu

    def _follow(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self._sample()
            except Exception:  # the database is being dropped at the end of the run
                return

    def mark(self) -> None:
        self._sample()
        with self._lock:
            self._cpu = {pid: [last, last] for pid, (_, last) in self._cpu.items()}

    def since_mark(self) -> float:
        self._sample()
        with self._lock:
            return sum(last - first for first, last in self._cpu.values())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _count_earned(engine: Any, workspace_id: int) -> int:
    from patronage.ledger.models import LedgerTransaction

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(LedgerTransaction).where(
            LedgerTransaction.workspace_id == workspace_id, LedgerTransaction.kind == "earn",
            LedgerTransaction.source_type == "order")).scalar_one())


def ingest(args: argparse.Namespace) -> dict[str, Any]:
    from patronage import domains
    from patronage.config import Settings
    from patronage.kit.db import make_database
    from patronage.kit.models import Base

    admin_url = os.environ.get(PG_ENV, DEFAULT_PG)
    name = f"bench_loyalty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    procs: list[subprocess.Popen[bytes]] = []
    pg_cpu: PostgresCpu | None = None
    try:
        domains.load_tasks()
        db = make_database(Settings(database_url=url))
        Base.metadata.create_all(db.engine)
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE ref_orders (id BIGSERIAL PRIMARY KEY, external_id TEXT UNIQUE, "
                              "customer TEXT, total NUMERIC(18,4), created_at TIMESTAMPTZ DEFAULT now())"))
            conn.execute(text("CREATE TABLE ref_customers (id BIGINT PRIMARY KEY, orders INT, spent NUMERIC(18,4))"))
            conn.execute(text("INSERT INTO ref_customers SELECT g, 0, 0 FROM generate_series(1, :n) g"),
                         {"n": args.customers})
        workspace_id, secret = _setup_workspace(db, "UTC")
        pg_cpu = PostgresCpu(admin, name)
        env = base_env(PATRONAGE_DATABASE_URL=url, PATRONAGE_ENV="production",
                       PATRONAGE_SECRET_KEY="bench-secret-key-0123456789", PATRONAGE_WORKER_POLL_INTERVAL="0.05",
                       PATRONAGE_DB_POOL_SIZE="10", REF_DATABASE_URL=url,
                       PATRONAGE_ORDER_GROUP_COMMIT="false" if args.no_group_commit else "true")
        for _ in range(0 if args.http_only else args.job_processes):
            # At a lower CPU priority, as docs/operations.md recommends for workers sharing the machine.
            nice = ["nice", "-n", str(args.worker_nice)] if args.worker_nice else []
            command = [*nice, *patronage_command(), "worker", "--concurrency", str(args.job_threads)]
            procs.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        workers = ["--workers", str(args.http_workers)]
        with temp_dir() as tmp:
            (tmp / "ref_app.py").write_text(REFERENCE_APP)
            real = Server("patronage.asgi:app", env=env, extra_args=workers)
            ref = Server("ref_app:app", env=env, app_dir=tmp, extra_args=workers)
            real.start(timeout=300)
            ref.start(timeout=300)
            try:
                runner = asyncio.run
                warm = [_order(i, args.customers) for i in range(200)]
                runner(_send(real.url + "/api/v1/orders", headers, warm, args.concurrency))
                runner(_send(ref.url + "/orders", {}, [_order(i, args.customers) for i in range(200)],
                             args.concurrency))
                if not args.http_only:
                    _wait_earned(db.engine, workspace_id, 200, timeout=300)
                # The steady state of a live database: autovacuum has analyzed its tables. Without
                # statistics (this database is minutes old) the planner takes any index that starts with
                # workspace_id for a look-up by key and filters the whole tenant: 20x the buffers.
                with db.engine.begin() as conn:
                    conn.execute(text("ANALYZE"))
                assert ref.proc is not None and real.proc is not None
                ref_cpu = _tree_cpu([ref.proc.pid])
                ref_run = runner(_send(ref.url + "/orders", {}, [_order(i, args.customers)
                                                                 for i in range(args.orders)], args.concurrency))
                ref_cpu = _tree_cpu([ref.proc.pid]) - ref_cpu
                before = _count_earned(db.engine, workspace_id)
                orders = [_order(10_000 + i, args.customers) for i in range(args.orders)]
                http_cpu, jobs_cpu = _tree_cpu([real.proc.pid]), _tree_cpu([p.pid for p in procs])
                pg_cpu.mark()
                t0 = time.perf_counter()
                real_run = runner(_send(real.url + "/api/v1/orders", headers, orders, args.concurrency))
                if args.http_only:
                    e2e = float("nan")
                else:
                    done_at = _wait_earned(db.engine, workspace_id, before + args.orders, timeout=900)
                    e2e = args.orders / (done_at - t0)
                # Jobs that no earn transaction waits for (tiers, segments, lifecycle, ...) run on after
                # the last earn: their CPU is counted once the queue has drained.
                backlog_s = None if args.http_only else _wait_drained(db.engine, workspace_id, timeout=900)
                http_cpu = _tree_cpu([real.proc.pid]) - http_cpu
                jobs_cpu = _tree_cpu([p.pid for p in procs]) - jobs_cpu
                postgres_cpu = pg_cpu.since_mark()
                cpu_ms = {"reference_http_per_order": round(ref_cpu / args.orders * 1000, 2),
                          "patronage_http_per_order": round(http_cpu / args.orders * 1000, 2),
                          "patronage_jobs_per_order": round(jobs_cpu / args.orders * 1000, 2),
                          "postgres_backends_per_order": round(postgres_cpu / args.orders * 1000, 2),
                          "jobs_drained_s_after_last_earn": None if backlog_s is None else round(backlog_s, 2)}
            finally:
                real.stop()
                ref.stop()
        with db.unit_of_work(read_only=True) as s:
            from patronage.kit.doctor import run_checks
            from patronage.kit.jobs.models import Job

            jobs_per_order = {task: round(n / (args.orders + 200), 2) for task, n in s.execute(
                select(Job.task, func.count()).where(Job.workspace_id == workspace_id).group_by(Job.task)
                .order_by(Job.task))}

            doctor = [f"{f.check}: {f.severity}" for f in run_checks(s, ["patronage.ledger.doctor"])]
        db.dispose()
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
        if pg_cpu is not None:
            pg_cpu.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    ratio = (real_run["http_rps"] if args.http_only else e2e) / ref_run["http_rps"]
    errors = real_run["errors"] + ref_run["errors"]
    return {
        "what": "POST /api/v1/orders -> order.recorded -> earning rules -> ledger, end to end, PostgreSQL",
        "settings": {"http_only": args.http_only, "group_commit": not args.no_group_commit,
                     "orders": args.orders, "customers": args.customers,
                     "concurrency": args.concurrency,
                     "http_workers": args.http_workers, "job_worker_processes": args.job_processes,
                     "job_worker_threads": args.job_threads, "job_worker_nice": args.worker_nice,
                     "measured": "first request until the last order's earn transaction exists (DB poll 50 ms)"},
        "patronage": {**{k: v for k, v in real_run.items() if k != "start"},
                      "end_to_end_orders_per_s": None if args.http_only else round(e2e, 1)},
        "reference": {k: v for k, v in ref_run.items() if k != "start"},
        # Client, PostgreSQL and the other side share the machine's CPUs: what each side itself costs.
        "server_cpu_ms": cpu_ms,
        "jobs_per_order": jobs_per_order,
        "throughput_ratio": round(ratio, 3), "target_ratio": 0.5, "p99_target_ms": 150,
        "doctor": doctor,
        "pass": not args.http_only and ratio >= 0.5 and real_run["p99_ms"] <= 150 and errors == 0,
    }


def _wait_drained(engine: Any, workspace_id: int, *, timeout: float) -> float:
    """Seconds until none of the workspace's jobs is running or due within 10 s (segments' debounced
    re-evaluations wait 5 s by design; periodic jobs due tomorrow are not part of the load)."""
    from patronage.kit.jobs.models import Job, JobStatus

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        soon = datetime.now(UTC) + timedelta(seconds=10)
        with engine.connect() as conn:
            waiting = conn.execute(select(func.count()).select_from(Job).where(
                Job.workspace_id == workspace_id,
                (Job.status == JobStatus.RUNNING) | ((Job.status == JobStatus.QUEUED) & (Job.run_at <= soon)),
            )).scalar_one()
        if not waiting:
            return time.perf_counter() - start
        time.sleep(0.1)
    raise RuntimeError(f"jobs still waiting after {timeout} s")


def _wait_earned(engine: Any, workspace_id: int, wanted: int, *, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if _count_earned(engine, workspace_id) >= wanted:
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"only {_count_earned(engine, workspace_id)} of {wanted} orders earned within {timeout} s")


# ---- (2) CDNOW replay on SQLite ----------------------------------------------------------------------
def _load_cdnow(db: Any, workspace_id: int) -> int:
    """The CDNOW demo orders through the events domain's demo loader; returns how many are stored."""
    from rich.console import Console

    from patronage.events.demo import load_cdnow

    load_cdnow(db, workspace_id, Console(stderr=True, quiet=True))
    from patronage.events.models import Order

    with db.unit_of_work(read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(Order).where(Order.workspace_id == workspace_id)) or 0)


def replay(args: argparse.Namespace) -> dict[str, Any]:
    from patronage import domains
    from patronage.config import Settings
    from patronage.earning.replay import replay_orders
    from patronage.kit.db import make_database
    from patronage.kit.doctor import run_checks
    from patronage.kit.models import Base

    domains.load_tasks()
    with temp_dir() as tmp:
        db = make_database(Settings(database_url=f"sqlite:///{Path(tmp) / 'replay.db'}"))
        Base.metadata.create_all(db.engine)
        workspace_id, _ = _setup_workspace(db, "America/New_York")
        t0 = time.perf_counter()
        orders = _load_cdnow(db, workspace_id)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with db.unit_of_work() as s:
            report = replay_orders(s, workspace_id, actor="bench")
        replay_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with db.unit_of_work(read_only=True) as s:
            findings = run_checks(s, ["patronage.ledger.doctor"])
        doctor_s = time.perf_counter() - t0
        db.dispose()
    return {
        "what": "CDNOW master log replayed through the earning engine + bulk ledger posting, SQLite",
        "orders_in_database": orders, "load_s (not timed)": round(load_s, 2),
        "replay_s": round(replay_s, 2), "orders_per_s": round(report.orders / replay_s, 1),
        "orders": report.orders, "earning_orders": report.earning_orders, "transactions": report.posted,
        "points": report.points, "by_rule": report.by_rule,
        "doctor_s": round(doctor_s, 2), "doctor": [f"{f.check}: {f.severity}" for f in findings],
        "target_s": 20, "pass": replay_s <= 20 and all(f.severity != "error" for f in findings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("ingest", "replay", "all"), default="all")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--http-workers", type=int, default=2)
    # One process, one thread: the production default, and the least job CPU per order (docs/jobs.md).
    parser.add_argument("--job-processes", type=int, default=1)
    parser.add_argument("--job-threads", type=int, default=1)
    parser.add_argument("--worker-nice", type=int, default=10,
                        help="CPU niceness of the job workers (docs/operations.md; 0: as the HTTP processes)")
    parser.add_argument("--no-group-commit", action="store_true",
                        help="diagnostic: each POST /orders commits on its own (PATRONAGE_ORDER_GROUP_COMMIT=false)")
    parser.add_argument("--http-only", action="store_true",
                        help="diagnostic: no job workers; the ratio is HTTP acceptance only (not end to end)")
    args = parser.parse_args()
    out: dict[str, Any] = {"bench": "loyalty", "machine": machine()}
    if args.part in ("replay", "all"):
        out["replay"] = replay(args)
    if args.part in ("ingest", "all"):
        out["ingest"] = ingest(args)
    emit(out)
    sys.exit(0)


if __name__ == "__main__":
    main()
