"""Bulk import benchmark (issue 3, "Customers, orders and events"), one JSON document on stdout.

(1) ``orders``: ``patronage import orders`` of a generated JSON Lines file (1-3 lines per order, about five
    orders per customer, customers unknown beforehand so they are created on the way) into a fresh
    SQLite file and a fresh PostgreSQL database, in a child process whose peak RSS is reported. The
    whole pipeline is timed: streaming read, validation (``importer/prepare.py``), bulk identity
    resolution (``ensure_customers``), orders and lines, the customer aggregates in one set-based UPDATE
    (``record_new_orders_totals``) and one ``orders.imported`` batch domain event per chunk with a job per
    subscriber. A second run of the same file (idempotent: nothing changes) is timed too. Reference, same
    run, same machine: reading the same file with ``json.loads`` and inserting one row per order with a
    raw driver ``executemany`` into a bare table (no indexes, no constraints) - the floor of "parse and
    store". Targets: >= 20,000 orders/s on SQLite and >= 10,000 orders/s on PostgreSQL, peak RSS <= 1 GiB
    for 1,000,000 orders (the importer's plus its reader process's, ``--reader``). ``seconds_in`` splits
    the import's time between the events domain's own code and the functions it calls in other domains.
    ``cpu_seconds`` is this process's CPU time, steadier than wall time on a shared machine;
    ``reader_cpu_seconds`` the reader process's.
(2) ``cdnow_demo_seconds``: ``patronage.events.demo.load_cdnow`` (69,659 orders, 23,570 customers) into a
    fresh SQLite database; target <= 15 s. ``cdnow_demo.earning_demo_load`` times the step that may follow
    it (``patronage.earning.demo.load``: a published rule set and the demo's points in one bulk replay),
    reported separately.

    python -m bench.bench_import [--orders 1000000] [--backends sqlite,postgres] [--skip-demo]
                                 [--reader auto|process|inline]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bench._util import ROOT, emit, machine, temp_dir

PG_ENV = "PATRONAGE_BENCH_POSTGRES_URL"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGETS = {"sqlite": 20_000, "postgres": 10_000}
RSS_LIMIT_MB = 1024
DEMO_LIMIT_S = 15.0


# ---- data --------------------------------------------------------------------------------------------
def generate(path: Path, orders: int, seed: int = 7) -> int:
    """Write ``orders`` orders as JSON Lines (streaming); returns the file size in bytes."""
    rnd = random.Random(seed)
    customers = max(orders // 5, 1)
    skus = [(f"SKU-{i:04d}", f"Product {i}", ("Tea", "Coffee", "Cups", "Gifts")[i % 4]) for i in range(800)]
    with path.open("w", encoding="utf-8") as out:
        for i in range(orders):
            lines = []
            subtotal = 0
            for _ in range(rnd.randint(1, 3)):
                sku, name, category = skus[rnd.randrange(len(skus))]
                quantity, cents = rnd.randint(1, 4), rnd.randint(150, 9000)
                discount = rnd.choice((0, 0, 0, 100, 250)) if quantity * cents > 500 else 0
                subtotal += quantity * cents - discount
                line: dict[str, Any] = {"sku": sku, "name": name, "category": category, "quantity": quantity,
                                        "unit_price": f"{cents / 100:.2f}"}
                if discount:
                    line["discount"] = f"{discount / 100:.2f}"
                lines.append(line)
            shipping = rnd.choice((0, 490, 990))
            day = 1_700_000_000 + rnd.randrange(0, 730 * 86_400)
            order = {
                "external_id": f"ord-{i:08d}", "customer_external_id": f"cus-{rnd.randrange(customers):07d}",
                "placed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(day)),
                "channel": rnd.choice(("web", "web", "app", "store")), "lines": lines,
                "shipping_total": f"{shipping / 100:.2f}", "total": f"{(subtotal + shipping) / 100:.2f}",
            }
            out.write(json.dumps(order, separators=(",", ":")))
            out.write("\n")
    return path.stat().st_size


# ---- databases ---------------------------------------------------------------------------------------
def postgres_admin_url() -> str | None:
    url = os.environ.get(PG_ENV, DEFAULT_PG)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return None
    return url


def fresh_database(backend: str, workdir: Path, admin_url: str | None, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / (name + '.db')}"
    assert admin_url is not None
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# ---- child processes (each measures its own peak RSS) -------------------------------------------------
def run_child(mode: str, **kwargs: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_import", "--child", mode, "--child-args", json.dumps(kwargs)],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "PATRONAGE_LOG_LEVEL": "WARNING", "PATRONAGE_LOG_JSON": "true"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _setup(url: str) -> tuple[Any, int]:
    from patronage import domains
    from patronage.config import Settings
    from patronage.kit.db import make_database
    from patronage.kit.models import Base
    from patronage.workspaces.models import Workspace

    domains.load_tasks()
    db = make_database(Settings(database_url=url, log_level="WARNING", sqlite_synchronous="NORMAL"))
    Base.metadata.create_all(db.engine)
    with db.unit_of_work() as session:  # a second run (another process) finds the first one's workspace
        workspace = session.scalars(select(Workspace).where(Workspace.slug == "bench")).one_or_none()
        if workspace is None:
            workspace = Workspace(name="Bench", slug="bench", timezone="Europe/Lisbon", currency="EUR")
            session.add(workspace)
            session.flush()
        return db, workspace.id


def _instrument() -> dict[str, float]:
    """Time the calls the bulk path makes into other domains (bench only)."""
    import functools

    from patronage.events.importer import orders_bulk

    spent: dict[str, float] = {}

    def wrap(module: Any, name: str) -> None:
        inner = getattr(module, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
                spent[f"cpu:{name}"] = spent.get(f"cpu:{name}", 0.0) + time.process_time() - cpu

        setattr(module, name, timed)

    for name in ("ensure_customers", "record_new_orders_totals", "record_event"):
        wrap(orders_bulk, name)
    return spent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_import(
    url: str, path: str, parallel: bool | None = None, labels: tuple[str, ...] = ("first", "rerun")
) -> dict[str, Any]:
    """One import per label, in this process (the bench runs each in its own, as the CLI does)."""
    from patronage.events.importer.runner import run_import

    db, workspace_id = _setup(url)
    spent = _instrument()
    out: dict[str, Any] = {}
    for label in labels:
        spent.clear()
        reader_cpu = _children_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        report = run_import(db, workspace_id, "orders", Path(path), "jsonl", actor="bench", parallel=parallel)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        reader_cpu = _children_cpu() - reader_cpu
        # Time inside the customers domain and the job queue; the rest is the events domain's own code.
        other = sum(v for k, v in spent.items() if not k.startswith("cpu:"))
        other_cpu = sum(v for k, v in spent.items() if k.startswith("cpu:"))
        out[label] = {
            "seconds": round(seconds, 2), "orders_per_s": round(report.read / seconds),
            # This process's CPU time: steadier than wall time on a shared machine (SQLite runs in-process;
            # PostgreSQL's own work is not in it).
            "cpu_seconds": round(cpu_seconds, 2), "orders_per_cpu_s": round(report.read / cpu_seconds),
            # The reader process's CPU time (parsing and validation; 0 when read in-process).
            "reader_cpu_seconds": round(reader_cpu, 2),
            "created": report.created, "unchanged": report.unchanged, "failed": report.failed,
            "seconds_in": {**{k: round(v, 2) for k, v in sorted(spent.items()) if not k.startswith("cpu:")},
                           "events_domain_and_rest": round(seconds - other, 2)},
            "cpu_seconds_in": {**{k[4:]: round(v, 2) for k, v in sorted(spent.items()) if k.startswith("cpu:")},
                               "events_domain_and_rest": round(cpu_seconds - other_cpu, 2)},
            "events_domain_orders_per_cpu_s": round(report.read / max(cpu_seconds - other_cpu, 1e-9)),
        }
    db.dispose()
    out["peak_rss_mb"] = _peak_rss_mb()
    # The reader process's peak: it is forked, so this counts the pages it shares with this process too.
    out["reader_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return out


def child_reference(url: str, path: str) -> dict[str, Any]:
    """json.loads each line and executemany one row per order into a bare table: the floor."""
    engine = create_engine(url)
    columns = "external_id, customer, placed_at, channel, total, currency, lines"
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE bare_orders (external_id TEXT, customer TEXT, placed_at TEXT, channel TEXT, "
            "total NUMERIC, currency TEXT, lines INTEGER)"
        )
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    marks = ", ".join(["?" if engine.dialect.name == "sqlite" else "%s"] * 7)
    sql = f"INSERT INTO bare_orders ({columns}) VALUES ({marks})"
    with engine.begin() as conn, open(path, encoding="utf-8") as handle:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        chunk: list[tuple[Any, ...]] = []
        for raw in handle:
            o = json.loads(raw)
            chunk.append((o["external_id"], o["customer_external_id"], o["placed_at"], o["channel"], o["total"],
                          "EUR", len(o["lines"])))
            if len(chunk) == 2000:
                cursor.executemany(sql, chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            cursor.executemany(sql, chunk)
            count += len(chunk)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return {"seconds": round(seconds, 2), "orders_per_s": round(count / seconds), "cpu_seconds": round(cpu_seconds, 2),
            "orders_per_cpu_s": round(count / cpu_seconds), "peak_rss_mb": _peak_rss_mb()}


def child_demo(url: str) -> dict[str, Any]:
    from rich.console import Console

    from patronage.earning import demo as earning_demo
    from patronage.events.demo import load_cdnow

    db, workspace_id = _setup(url)
    console = Console(stderr=True, quiet=True)
    started, cpu = time.perf_counter(), time.process_time()
    result = load_cdnow(db, workspace_id, console)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    rss = _peak_rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    earned = earning_demo.load(db, workspace_id, console)
    earning = {"seconds": round(time.perf_counter() - started, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
               "orders_earning": earned["posted"], "points": earned["points"]}
    db.dispose()
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2), "orders": result["orders"],
            "customers": result["customers"], "peak_rss_mb": rss, "earning_demo_load": earning}


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "import": child_import, "reference": child_reference, "demo": child_demo,
}


# ---- main --------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--reader", choices=("auto", "process", "inline"), default="auto",
                        help="parse and validate in a second process (default: for large files) or inline")
    parser.add_argument("--child", choices=sorted(CHILDREN))
    parser.add_argument("--child-args", default="{}")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](**json.loads(args.child_args))))
        return
    parallel = {"auto": None, "process": True, "inline": False}[args.reader]
    admin_url = postgres_admin_url()
    document: dict[str, Any] = {"bench": "bench_import", "machine": machine(), "orders": args.orders, "results": {}}
    passed = True
    with temp_dir() as workdir:
        source = workdir / "orders.jsonl"
        started = time.perf_counter()
        document["file_mb"] = round(generate(source, args.orders) / 2**20, 1)
        document["generate_s"] = round(time.perf_counter() - started, 1)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "postgres" and admin_url is None:
                document["results"][backend] = {"skipped": "no PostgreSQL reachable"}
                continue
            name = f"patronage_bench_import_{os.getpid()}"
            names = [name, name + "_ref"]
            try:
                url = fresh_database(backend, workdir, admin_url, names[0])
                # The first import and the re-run each in a process of their own, as two CLI runs are.
                imported = run_child("import", url=url, path=str(source), parallel=parallel, labels=["first"])
                again = run_child("import", url=url, path=str(source), parallel=parallel, labels=["rerun"])
                imported["rerun"] = again["rerun"]
                for key in ("peak_rss_mb", "reader_peak_rss_mb"):
                    imported[key] = max(imported[key], again[key])
                url = fresh_database(backend, workdir, admin_url, names[1])
                reference = run_child("reference", url=url, path=str(source))
            finally:
                if backend == "postgres" and admin_url:
                    for each in names:
                        drop_database(admin_url, each)
            rate = imported["first"]["orders_per_s"]
            rss = imported["peak_rss_mb"] + imported["reader_peak_rss_mb"]
            ok = rate >= TARGETS[backend] and rss <= RSS_LIMIT_MB
            passed = passed and ok
            document["results"][backend] = {
                "import": imported, "reference_bare_executemany": reference,
                "ratio_to_reference": round(rate / reference["orders_per_s"], 3),
                "target_orders_per_s": TARGETS[backend], "pass": ok,
            }
        if not args.skip_demo:
            demo = run_child("demo", url=fresh_database("sqlite", workdir, None, "demo"))
            document["cdnow_demo_seconds"] = demo["seconds"]
            document["cdnow_demo"] = demo
            passed = passed and demo["seconds"] <= DEMO_LIMIT_S
    document["pass"] = passed
    emit(document)


if __name__ == "__main__":
    main()
