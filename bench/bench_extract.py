"""Analytics extract and score write-back against the operational database.

    python bench/bench_extract.py [--customers 20000] [--database-url URL]

Loads ``customers`` profiles and about ten orders each into the operational database (a temporary SQLite
file unless ``--database-url`` names another, e.g. a scratch PostgreSQL database: its tables are dropped
and recreated), then times

* ``extract``: a full :func:`patronage.analytics.extract.extract` into an in-memory store, against the
  reference: the same SELECTs run on a bare DB-API cursor, rows fetched with no conversion at all (the
  Python driver's floor; the extract reads Arrow batches through ADBC instead, converts every column and
  inserts it into DuckDB);
* ``write_scores``: writing one score row per customer back (``customer_scores``), twice (the second
  replaces the first), against the reference: one bare ``executemany`` INSERT of the same rows.

Prints one JSON document; ``cpu_s`` is this process's user + system time (the database server's is not
counted).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from patronage import domains
from patronage.analytics.extract import extract, open_store
from patronage.analytics.models import CustomerScores
from patronage.analytics.service import write_scores
from patronage.analytics.store_tables import TABLES
from patronage.config import Settings
from patronage.customers.models import Customer
from patronage.events.models import Order
from patronage.kit.db import Database, make_database
from patronage.kit.models import Base
from patronage.workspaces.models import Workspace

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(db: Database, customers: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    orders = customers * 10
    owner = rng.integers(1, customers + 1, orders)
    days = rng.integers(0, 1000, orders)
    totals = np.round(rng.lognormal(3.6, 0.6, orders), 2)
    with db.engine.begin() as connection:
        workspace = {"id": 1, "name": "Bench", "slug": "bench", "timezone": "Europe/Lisbon"}
        connection.execute(insert(Workspace), [workspace])
        connection.execute(insert(Customer), [
            {"id": i, "workspace_id": 1, "acquisition_channel": "web", "created_at": NOW, "updated_at": NOW}
            for i in range(1, customers + 1)
        ])
        for start in range(0, orders, 50_000):
            connection.execute(insert(Order), [
                {"id": j + 1, "workspace_id": 1, "external_id": f"o{j}", "customer_id": int(owner[j]),
                 "currency": "EUR", "subtotal": float(totals[j]), "total": float(totals[j]),
                 "placed_at": NOW - timedelta(days=int(days[j]), minutes=j % 1440), "channel": "web",
                 "created_at": NOW, "updated_at": NOW}
                for j in range(start, min(start + 50_000, orders))
            ])
    return orders


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), cpu_s()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, cpu_s() - cpu


def raw_read(db: Database) -> int:
    """The reference: every extracted table's SELECT on a bare cursor, rows fetched, nothing converted."""
    rows = 0
    with db.read_engine.connect() as connection:
        for spec in TABLES:
            compiled = spec.build(1).compile(dialect=connection.dialect)
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            params = compiled.params
            if connection.dialect.paramstyle == "qmark":
                cursor.execute(str(compiled), tuple(params[name] for name in compiled.positiontup or ()))
            else:
                cursor.execute(str(compiled), params)
            while batch := cursor.fetchmany(50_000):
                rows += len(batch)
            cursor.close()
    return rows


def score_table(customers: int) -> pa.Table:
    rng = np.random.default_rng(0)
    n = customers
    return pa.table({
        "customer_id": pa.array(np.arange(1, n + 1)), "recency_days": pa.array(rng.integers(0, 900, n)),
        "frequency": pa.array(rng.integers(1, 20, n)), "monetary": pa.array(rng.random(n) * 1000),
        "r": pa.array(rng.integers(1, 6, n)), "f": pa.array(rng.integers(1, 6, n)),
        "m": pa.array(rng.integers(1, 6, n)),
        "segment": pa.array(["Loyal"] * n), "p_alive": pa.array(rng.random(n)),
        "expected_purchases_90d": pa.array(rng.random(n)), "expected_clv": pa.array(rng.random(n) * 100),
    })


def raw_write(db: Database, scores: pa.Table) -> None:
    """The reference: the same rows in one bare executemany INSERT into a scratch copy of the table."""
    columns = ["customer_id", "workspace_id", "rfm_r", "rfm_f", "rfm_m", "rfm_segment", "recency_days",
               "frequency", "monetary", "p_alive", "expected_purchases_90d", "expected_clv", "updated_at"]
    col = scores.to_pydict()
    stamp = NOW.replace(tzinfo=None)
    n = scores.num_rows
    rows = list(zip(col["customer_id"], [1] * n, col["r"], col["f"], col["m"], col["segment"], col["recency_days"],
                    col["frequency"], col["monetary"], col["p_alive"], col["expected_purchases_90d"],
                    col["expected_clv"], [stamp] * n, strict=True))
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_scores"))
        connection.execute(text("CREATE TABLE bench_scores AS SELECT * FROM customer_scores WHERE 1 = 0"))
        marks = ", ".join("?" if connection.dialect.paramstyle == "qmark" else "%s" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO bench_scores ({', '.join(columns)}) VALUES ({marks})", rows)
        connection.execute(text("DROP TABLE bench_scores"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    domains.load_models()
    with tempfile.TemporaryDirectory(prefix="patronage-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/operational.db"
        db = make_database(Settings(database_url=url, env="test", secret_key="bench-" * 6, log_level="WARNING"))
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        orders, load_s, _ = timed(load, db, args.customers, args.seed)
        ref_rows, ref_s, ref_cpu = timed(raw_read, db)
        store = open_store(None)
        stats, extract_s, extract_cpu = timed(extract, db, store, 1, "Europe/Lisbon", full=True)
        copied = sum(stats.rows.values())
        scores = score_table(args.customers)
        _, ref_write_s, ref_write_cpu = timed(raw_write, db, scores)
        first, write_s, write_cpu = timed(write_scores, db, 1, scores)
        again, rewrite_s, rewrite_cpu = timed(write_scores, db, 1, scores)
        with db.engine.connect() as connection:
            stored = connection.execute(text(f"SELECT COUNT(*) FROM {CustomerScores.__tablename__}")).scalar_one()
        db.dispose()
    checks = {"every_row_extracted": copied == ref_rows, "every_score_written": first == again == stored}
    print(json.dumps({
        "bench": "bench_extract", "pass": all(checks.values()), "backend": url.split(":", 1)[0],
        "customers": args.customers, "orders": orders,
        "load_s": round(load_s, 2),
        "extract": {"rows": copied, "wall_s": round(extract_s, 3), "cpu_s": round(extract_cpu, 3),
                    "rows_per_s": round(copied / extract_s), "reference_rows": ref_rows,
                    "reference_wall_s": round(ref_s, 3), "reference_cpu_s": round(ref_cpu, 3),
                    "ratio": round(extract_s / ref_s, 3)},
        "write_scores": {"rows": first, "wall_s": round(write_s, 3), "cpu_s": round(write_cpu, 3),
                         "replace_wall_s": round(rewrite_s, 3), "replace_cpu_s": round(rewrite_cpu, 3),
                         "rows_per_s": round(first / write_s), "reference_wall_s": round(ref_write_s, 3),
                         "reference_cpu_s": round(ref_write_cpu, 3), "ratio": round(write_s / ref_write_s, 3)},
        "checks": checks,
    }, indent=2))


if __name__ == "__main__":
    main()
