"""Analytics refresh benchmark: KPIs, cohorts, RFM and the CLV models on simulated purchase histories.

    python bench/bench_analytics.py [--customers 1000000] [--seed 7] [--threads 2] [--store file|memory]

A seeded NumPy generator writes customers, orders (about 12 per customer) and loyalty members straight
into a DuckDB analytics store with the schema extract.py maintains: by default a file in a temporary
directory, as a workspace's store is in production (``--store memory`` keeps it in memory, where the base
tables cannot be evicted under the memory limit). Then:

* ``refresh``: the full computation a nightly refresh runs (every KPI for day/week/month and every
  breakdown, weekly and monthly cohorts, lifecycle, funnel, program impact, RFM, BG/NBD + Gamma-Gamma fit
  and per-customer predictions), timed per step, with peak resident memory;
* ``reference``: hand-written DuckDB queries (native date functions, ``GROUP BY ALL``, ``COLUMNS(*)``,
  no portability constraints) for the same numbers -- monthly KPI measures for every breakdown, monthly
  cohorts, RFM scores -- timed in the same run. Both sides start from the store's ``customer_days`` rollup
  (built once per refresh, timed as ``prepare``); the portable side's time includes every relation it
  materialises for that computation (calendars, customer dimensions, customer x period tables). Each
  pair is checked for equal results.

Wall time on a shared machine depends on its load; ``cpu_s`` (user + system time of this process) is
reported beside it.

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from patronage.analytics import compute, scoring, sql
from patronage.analytics.calendar import Period, day_number
from patronage.analytics.engine import DuckEngine
from patronage.analytics.extract import open_store

START = date(2022, 1, 1)
AS_OF = date(2024, 12, 31)
CHANNELS = np.array(["web", "app", "store", "marketplace"])
TIERS = np.array(["bronze", "silver", "gold"])


def generate(store: Any, customers: int, seed: int) -> dict[str, int]:
    """Simulated histories: acquisition uniform over three years, Poisson buying while alive
    (exponential lifetimes), ~10 orders per customer, log-normal order values."""
    rng = np.random.default_rng(seed)
    span = day_number(AS_OF) - day_number(START)
    first = day_number(START) + rng.integers(0, span, customers)
    lifetime = rng.exponential(700.0, customers)
    end = np.minimum(first + lifetime, day_number(AS_OF)).astype(np.int64)
    rate = rng.gamma(2.0, 1 / 60.0, customers)  # purchases per day while alive
    extra = rng.poisson(rate * (end - first + 1))
    counts = 1 + extra
    n_orders = int(counts.sum())
    owner = np.repeat(np.arange(1, customers + 1, dtype=np.int64), counts)
    starts = np.repeat(first, counts)
    lengths = np.repeat(end - first + 1, counts)
    is_first = np.zeros(n_orders, dtype=bool)
    is_first[np.r_[0, np.cumsum(counts)[:-1]]] = True
    offsets = np.where(is_first, 0, (rng.random(n_orders) * lengths).astype(np.int64))
    dnum = (starts + offsets).astype(np.int32)
    revenue = np.round(rng.lognormal(3.6, 0.6, n_orders), 2)
    status = np.where(rng.random(n_orders) < 0.02, "cancelled", "paid")
    customers_table = pa.table({
        "id": pa.array(np.arange(1, customers + 1, dtype=np.int64)),
        "acquisition_channel": pa.array(CHANNELS[rng.integers(0, CHANNELS.size, customers)]),
        "lifecycle_stage": pa.array(np.full(customers, "active")),
    })
    orders_table = pa.table({
        "id": pa.array(np.arange(1, n_orders + 1, dtype=np.int64)),
        "customer_id": pa.array(owner), "dnum": pa.array(dnum), "revenue": pa.array(revenue),
        "total": pa.array(revenue), "status": pa.array(status),
    })
    member = rng.random(customers) < 0.4
    member_ids = np.flatnonzero(member) + 1
    joined = first[member] + (rng.random(member_ids.size) * (day_number(AS_OF) - first[member])).astype(np.int64)
    members_table = pa.table({
        "customer_id": pa.array(member_ids.astype(np.int64)), "joined_dnum": pa.array(joined.astype(np.int32)),
        "tier": pa.array(TIERS[rng.integers(0, TIERS.size, member_ids.size)]),
    })
    for name, table, cols in (
        ("customers", customers_table, "id, acquisition_channel, lifecycle_stage"),
        ("orders", orders_table, "id, customer_id, dnum, revenue, total, status"),
        ("members", members_table, "customer_id, joined_dnum, tier"),
    ):
        store.register("__gen", table)
        store.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM __gen")
        store.unregister("__gen")
    return {"customers": customers, "orders": n_orders, "members": int(member_ids.size)}


# ---- hand-written DuckDB references ------------------------------------------------------------------
def ref_kpi_month(con: Any, window: int) -> pa.Table:
    """Monthly KPI measures per breakdown with DuckDB idioms (date_trunc, arg-free windows, FILTER)."""
    as_of = day_number(AS_OF)
    q = f"""
    WITH o AS (
      SELECT customer_id AS cid, DATE '1970-01-01' + dnum AS day, orders, revenue FROM customer_days
      WHERE dnum <= {as_of}
    ),
    cm AS (
      SELECT cid, date_trunc('month', day) AS m, sum(orders) AS n, sum(revenue) AS rev, max(day) AS last_day,
        min(day) AS first_day
      FROM o GROUP BY ALL
    ),
    x AS (
      SELECT *, lag(m) OVER w AS pm, lead(m) OVER w AS nm, lag(last_day) OVER w AS plast,
        sum(n) OVER (w ROWS UNBOUNDED PRECEDING) AS cum
      FROM cm WINDOW w AS (PARTITION BY cid ORDER BY m)
    ),
    d AS (
      SELECT x.*, min(first_day) OVER (PARTITION BY cid) AS cfirst,
        coalesce(c.acquisition_channel, 'unknown') AS channel,
        CASE WHEN mb.customer_id IS NULL THEN 'non_member' ELSE 'member' END AS membership,
        CASE WHEN mb.customer_id IS NULL THEN 'non_member' ELSE coalesce(mb.tier, 'no_tier') END AS tier
      FROM x LEFT JOIN customers c ON c.id = x.cid LEFT JOIN members mb ON mb.customer_id = x.cid
    ),
    ev AS (
      SELECT m, channel, tier, membership, date_trunc('month', cfirst) AS cohort, n AS orders, rev AS revenue,
        1 AS active, (pm IS NULL)::INT AS new_customers, (cum >= 2 AND cum - n < 2)::INT AS second_buyers,
        date_diff('day', coalesce(plast, first_day), last_day) AS lifespan_days,
        CASE WHEN pm = m - INTERVAL 1 MONTH THEN rev ELSE 0 END AS retained_revenue, 0 AS dw, 0 AS dy
      FROM d
      UNION ALL SELECT m + INTERVAL 1 MONTH, channel, tier, membership, date_trunc('month', cfirst),
        0, 0, 0, 0, 0, 0, 0, 1, 1 FROM d
      UNION ALL SELECT least(coalesce(nm, DATE '9999-01-01'),
          date_trunc('month', last_day + {window})) + INTERVAL 1 MONTH,
        channel, tier, membership, date_trunc('month', cfirst), 0, 0, 0, 0, 0, 0, 0, -1, 0 FROM d
      UNION ALL SELECT least(coalesce(nm, DATE '9999-01-01'), date_trunc('month', last_day + 365))
          + INTERVAL 1 MONTH,
        channel, tier, membership, date_trunc('month', cfirst), 0, 0, 0, 0, 0, 0, 0, 0, -1 FROM d
    ),
    cube AS (SELECT m, channel, tier, membership, cohort, sum(COLUMNS(* EXCLUDE (m, channel, tier, membership,
      cohort))) FROM ev GROUP BY ALL)
    SELECT 'channel' AS b, channel AS g, m, sum(COLUMNS(* EXCLUDE (m, channel, tier, membership, cohort)))
      FROM cube GROUP BY ALL
    UNION ALL SELECT 'tier', tier, m, sum(COLUMNS(* EXCLUDE (m, channel, tier, membership, cohort)))
      FROM cube GROUP BY ALL
    UNION ALL SELECT 'membership', membership, m, sum(COLUMNS(* EXCLUDE (m, channel, tier, membership, cohort)))
      FROM cube GROUP BY ALL
    UNION ALL SELECT 'cohort', strftime(cohort, '%Y-%m'), m,
      sum(COLUMNS(* EXCLUDE (m, channel, tier, membership, cohort))) FROM cube GROUP BY ALL
    UNION ALL SELECT 'all', 'all', m, sum(COLUMNS(* EXCLUDE (m, channel, tier, membership, cohort)))
      FROM cube GROUP BY ALL
    """
    return con.sql(q).to_arrow_table()


def ref_cohorts_month(con: Any) -> pa.Table:
    as_of = day_number(AS_OF)
    q = f"""
    WITH o AS (
      SELECT customer_id AS cid, date_trunc('month', DATE '1970-01-01' + dnum) AS m, revenue
      FROM customer_days WHERE dnum <= {as_of}
    ),
    cm AS (SELECT cid, m, sum(revenue) AS rev FROM o GROUP BY ALL),
    f AS (SELECT *, min(m) OVER (PARTITION BY cid) AS cohort, max(m) OVER (PARTITION BY cid) AS last_m FROM cm)
    SELECT cohort, date_diff('month', cohort, m) AS n, count(*) AS customers, sum(rev) AS revenue,
      count(*) FILTER (WHERE m = cohort) AS cohort_size
    FROM f GROUP BY ALL ORDER BY ALL
    """
    return con.sql(q).to_arrow_table()


def ref_rfm(con: Any) -> pa.Table:
    """Scores, named segments, the R x F grid and the segment summary: what the portable RFM step makes."""
    as_of = day_number(AS_OF)
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE ref_rfm AS
    WITH c AS (
      SELECT customer_id AS cid, max(dnum) AS last_d, sum(orders) AS f, round(sum(revenue), 2) AS m
      FROM customer_days WHERE dnum <= {as_of} GROUP BY ALL
    ),
    s AS (
      SELECT cid, {as_of} - last_d AS recency, f AS frequency, m AS monetary,
        1 + floor(5 * (rank() OVER (ORDER BY last_d) - 1) / count(*) OVER ())::INT AS r,
        1 + floor(5 * (rank() OVER (ORDER BY f) - 1) / count(*) OVER ())::INT AS f_score,
        1 + floor(5 * (rank() OVER (ORDER BY m) - 1) / count(*) OVER ())::INT AS m_score
      FROM c
    )
    SELECT *, (f_score + m_score + 1) // 2 AS fm,
      CASE WHEN r = 5 THEN ['New customers', 'Potential loyalist', 'Potential loyalist', 'Champions',
                            'Champions'][fm]
           WHEN r = 4 THEN ['Promising', 'Potential loyalist', 'Potential loyalist', 'Loyal', 'Loyal'][fm]
           WHEN r = 3 THEN ['About to sleep', 'About to sleep', 'Need attention', 'Loyal', 'Loyal'][fm]
           WHEN r = 2 THEN ['Hibernating', 'Hibernating', 'At risk', 'At risk', 'Can''t lose them'][fm]
           ELSE ['Lost', 'Lost', 'At risk', 'At risk', 'Can''t lose them'][fm] END AS segment
    FROM s
    """)
    con.sql("SELECT r, f_score, count(*), sum(monetary) FROM ref_rfm GROUP BY ALL").fetchall()
    con.sql("SELECT segment, count(*), avg(recency), avg(frequency), avg(monetary), sum(monetary) "
            "FROM ref_rfm GROUP BY ALL").fetchall()
    return con.sql("SELECT cid, r, f_score, m_score, segment FROM ref_rfm").to_arrow_table()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dashboard_latency(results: dict[str, dict[str, Any]], rounds: int = 50) -> dict[str, float]:
    """Read precomputed results the way the API does (one indexed row, shaped by the service), from SQLite."""
    import statistics
    import tempfile

    from sqlalchemy import Table, create_engine, insert
    from sqlalchemy.orm import Session, sessionmaker

    from patronage.analytics import service
    from patronage.analytics.kpis import Kpi
    from patronage.analytics.models import AnalyticsResult
    from patronage.workspaces.models import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/dash.db")
        Workspace.metadata.create_all(engine, tables=[cast(Table, Workspace.__table__),
                                                       cast(Table, AnalyticsResult.__table__)])
        sessions = sessionmaker(engine)
        with sessions.begin() as session:
            session.add(Workspace(id=1, name="Bench", slug="bench"))
            session.flush()
            session.execute(insert(AnalyticsResult), [
                {"workspace_id": 1, "key": k, "payload": v, "as_of": AS_OF} for k, v in results.items()
            ])
        reads: list[Callable[[Session], Any]] = [
            lambda s: service.kpi_series(s, 1, kpi=Kpi.CRR, period="month", breakdown=None),
            lambda s: service.kpi_series(s, 1, kpi=Kpi.AOV, period="week", breakdown="tier"),
            lambda s: service.kpi_series(s, 1, kpi=Kpi.ACTIVE, period="day", breakdown="cohort"),
            lambda s: service.cohort_table(s, 1, period="month", metric="customers", mode="in", relative=True),
            lambda s: service.read_result(s, 1, "rfm").payload,
        ]
        timings: list[float] = []
        worst: list[float] = []
        for _ in range(rounds):
            for read in reads:
                with sessions() as session:
                    start = time.perf_counter()
                    read(session)
                    elapsed = (time.perf_counter() - start) * 1000
                timings.append(elapsed)
                if read is reads[2]:
                    worst.append(elapsed)
        engine.dispose()
    quantiles = statistics.quantiles(timings, n=20)
    return {"p50_ms": round(statistics.median(timings), 2), "p95_ms": round(quantiles[18], 2),
            "daily_by_cohort_p95_ms": round(statistics.quantiles(worst, n=20)[18], 2), "reads": len(timings)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--store", choices=("file", "memory"), default="file")
    args = parser.parse_args()

    import tempfile

    with tempfile.TemporaryDirectory(prefix="patronage-bench-") as tmp:
        run(args, None if args.store == "memory" else f"{tmp}/workspace.duckdb")


def run(args: argparse.Namespace, path: str | None) -> None:
    store = open_store(path)
    store.execute(f"SET threads = {args.threads}")
    store.execute(f"SET memory_limit = '{args.memory_limit}'")
    sizes, gen_s = timed(generate, store, args.customers, args.seed)
    if path is not None:
        store.execute("CHECKPOINT")  # the extract commits its rows before a refresh computes
    engine = DuckEngine(store)
    options = compute.Options(as_of=AS_OF, breakdowns=("all", "channel", "tier", "membership", "cohort"))

    start, cpu_start = time.perf_counter(), cpu_s()
    computed = compute.compute_all(engine, options)
    compute_s = time.perf_counter() - start
    (scores, summary), score_s = timed(scoring.score_customers, engine, options)
    refresh_s, refresh_cpu = time.perf_counter() - start, cpu_s() - cpu_start

    # References, each from the orders table, and the same computation on the portable path.
    refs: dict[str, dict[str, Any]] = {}
    ref_kpi, ref_kpi_s = timed(ref_kpi_month, store, options.active_window_days)
    ref_coh, ref_coh_s = timed(ref_cohorts_month, store)
    ref_r, ref_rfm_s = timed(ref_rfm, store)

    def portable(only: str, period: Period) -> tuple[compute.Computed, float]:
        opts = compute.Options(
            as_of=AS_OF, breakdowns=options.breakdowns, kpi_periods=(period,) if only == "kpi" else (),
            cohort_periods=(period,) if only == "cohorts" else (),
        )
        out = compute.compute_all(engine, opts, only=[only])
        # customer_days is the shared rollup both sides read; everything else counts.
        rollup = out.timings.get("prepare_rollup", 0.0)
        return out, sum(v for k, v in out.timings.items() if k != "prepare_rollup") - rollup

    kpi_only, kpi_s = portable("kpi", Period.MONTH)
    coh_only, coh_s = portable("cohorts", Period.MONTH)
    _, rfm_s = portable("rfm", Period.MONTH)
    refs["kpi_month"] = {"portable_s": round(kpi_s, 3), "reference_s": round(ref_kpi_s, 3),
                         "ratio": round(kpi_s / ref_kpi_s, 3), "equal": _check_kpi(kpi_only, ref_kpi)}
    refs["cohorts_month"] = {"portable_s": round(coh_s, 3), "reference_s": round(ref_coh_s, 3),
                             "ratio": round(coh_s / ref_coh_s, 3), "equal": _check_cohorts(coh_only, ref_coh)}
    refs["rfm"] = {"portable_s": round(rfm_s, 3), "reference_s": round(ref_rfm_s, 3),
                   "ratio": round(rfm_s / ref_rfm_s, 3), "equal": _check_rfm(engine, ref_r)}

    dashboard = dashboard_latency(computed.results)
    peak = peak_rss_mb()
    checks = {
        "dashboard_p95_under_300ms": dashboard["p95_ms"] <= 300,
        "refresh_under_60s": refresh_s <= 60,
        "peak_memory_under_4gb": peak <= 4096,
        "each_within_1.5x_reference": all(r["ratio"] <= 1.5 for r in refs.values()),
        "same_numbers_as_reference": all(r["equal"] for r in refs.values()),
    }
    print(json.dumps({
        "bench": "bench_analytics", "pass": all(checks.values()), "checks": checks,
        "benchmark": "analytics_refresh",
        "customers": sizes["customers"], "orders": sizes["orders"], "members": sizes["members"],
        "threads": args.threads, "store": args.store, "generate_s": round(gen_s, 2),
        "refresh_s": round(refresh_s, 2), "refresh_cpu_s": round(refresh_cpu, 2),
        "compute_s": round(compute_s, 2), "scoring_s": round(score_s, 2),
        "steps_s": computed.timings, "results": len(computed.results),
        "clv_fitted": summary.fitted, "clv": {"bgnbd": summary.bgnbd, "gamma_gamma": summary.gamma_gamma},
        "scored_customers": scores.num_rows,
        "peak_rss_mb": round(peak, 1),
        "vs_reference": refs,
        "dashboard_read": dashboard,
        "targets": {"refresh_s": 60, "peak_rss_mb": 4096, "ratio": 1.5},
    }, indent=2))


def _check_kpi(kpi_only: compute.Computed, ref: pa.Table) -> bool:
    rows = ref.to_pylist()
    ref_orders = float(sum(r["orders"] for r in rows if r["b"] == "all"))
    ref_active = [r for r in rows if r["b"] == "all"]
    ours = kpi_only.results["kpi/month/all/orders"]["groups"]["all"]
    ours_active = kpi_only.results["kpi/month/all/active_customers"]["groups"]["all"]
    return bool(
        abs(sum(v or 0 for v in ours) - ref_orders) < 1e-6
        and abs(sum(v or 0 for v in ours_active) - float(sum(r["active"] for r in ref_active))) < 1e-6
    )


def _check_cohorts(coh_only: compute.Computed, ref: pa.Table) -> bool:
    ours = {(c["cohort"], n): v for c in coh_only.results["cohorts/month"]["cohorts"]
            for n, v in enumerate(c["customers"]) if v}
    theirs = {(r["cohort"].strftime("%Y-%m"), r["n"]): float(r["customers"]) for r in ref.to_pylist()}
    return ours == theirs


def _check_rfm(engine: DuckEngine, ref: pa.Table) -> bool:
    ours = engine.query("SELECT customer_id, r, f, m, segment FROM rfm ORDER BY customer_id").to_pylist()
    theirs = sorted(ref.to_pylist(), key=lambda r: r["cid"])
    return len(ours) == len(theirs) and all(
        (a["r"], a["f"], a["m"], a["segment"]) == (b["r"], b["f_score"], b["m_score"], b["segment"])
        for a, b in zip(ours, theirs, strict=True)
    )


if __name__ == "__main__":
    _ = sql  # the SQL under test lives in patronage.analytics.sql
    main()
