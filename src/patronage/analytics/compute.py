"""Run the analytics SQL on an engine and shape the results into the payloads dashboards read.

``compute_all`` is engine-agnostic: the same function runs on DuckDB (refresh) and on Spark (the
portability test). Payloads are plain JSON-able dicts keyed like ``kpi/month/channel/churn_rate``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from patronage.analytics import kpis, sql
from patronage.analytics.calendar import Calendar, Period, build_calendar, day_number, from_day_number
from patronage.analytics.engine import Engine

BREAKDOWNS = ("all", "channel", "tier", "membership", "cohort", "segment")
_GROUP_EXPR = {
    "all": "'all'",
    "channel": "m.channel",
    "tier": "m.tier",
    "membership": "m.membership",
    "cohort": "CAST(m.cohort_month AS VARCHAR)",
    "segment": "CAST(c.grp AS VARCHAR)",
}
LIFECYCLE_STATES = ("new", "returning", "resurrecting", "dormant")
FUNNEL_STAGES = ("prospect", "new", "active", "loyal", "advocate")


@dataclass(frozen=True)
class Options:
    as_of: date
    active_window_days: int = 365
    loyal_min_orders: int = 4
    advocacy_event_types: tuple[str, ...] = ("referral_sent", "referral_converted", "review_posted")
    kpi_periods: tuple[Period, ...] = (Period.DAY, Period.WEEK, Period.MONTH)
    cohort_periods: tuple[Period, ...] = (Period.WEEK, Period.MONTH)
    breakdowns: tuple[str, ...] = BREAKDOWNS
    segment_names: dict[str, str] = field(default_factory=dict)
    members_available: bool = True


@dataclass
class Computed:
    results: dict[str, dict[str, Any]]
    timings: dict[str, float]
    has_data: bool


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 4)


def _col(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False))


def prepare(
    engine: Engine, options: Options, dims: bool = True, timer: _Timer | None = None
) -> dict[Period, Calendar] | None:
    """Customer-days, calendars and customer dimensions; None when nothing was bought."""
    as_of = day_number(options.as_of)
    start = time.perf_counter()
    engine.materialize("customer_days", sql.CUSTOMER_DAYS.format(as_of=as_of))
    rollup_s = time.perf_counter() - start
    first = engine.query("SELECT MIN(dnum) AS first_dnum FROM customer_days").column("first_dnum")[0].as_py()
    if first is None:
        return None
    if timer is not None:
        timer.timings["prepare_rollup"] = round(rollup_s, 4)
    first_day = from_day_number(first)
    calendars: dict[Period, Calendar] = {}
    for period in {*options.kpi_periods, *options.cohort_periods, *([Period.MONTH] if dims else [])}:
        calendar = build_calendar(first_day, options.as_of, period)
        calendars[period] = calendar
        engine.register(f"periods_{period}", calendar.periods_table())
        engine.register(f"days_{period}", calendar.day_table(first_day, options.active_window_days))
    if dims:
        engine.materialize("cust_dims", sql.CUSTOMER_DIMS)
        engine.materialize("combos", sql.COMBOS)
    return calendars


def period_relations(engine: Engine, calendar: Calendar, *, windows: bool = True) -> str:
    """``cpx_<period>`` (customer x period with neighbours) or, without ``windows``, the lighter
    ``cp_<period>``; returns the name of the relation built. ``cpx`` needs ``customer_days_x``."""
    period = calendar.period
    if not windows:
        engine.materialize(f"cp_{period}", sql.CUSTOMER_PERIODS.format(p=period))
        return f"cp_{period}"
    if period is Period.DAY:
        first = day_number(calendar.starts[0])
        engine.materialize("cpx_day", sql.CUSTOMER_DAYS_AS_PERIODS_X.format(first=first))
    else:
        engine.materialize(f"cpx_{period}", sql.CUSTOMER_PERIODS_X.format(p=period))
    return f"cpx_{period}"


def kpi_results(
    engine: Engine, calendar: Calendar, month_calendar: Calendar, options: Options
) -> dict[str, dict[str, Any]]:
    period, last = calendar.period, calendar.last_index
    engine.materialize(f"cube_{period}", sql.kpi_cube(period, last, "x.combo"))
    standard = f"cube_{period} c JOIN combos m ON m.combo = c.grp"
    parts = [(b, standard, _GROUP_EXPR[b]) for b in options.breakdowns if b != "segment"]
    if "segment" in options.breakdowns:
        join = "JOIN segment_members g ON g.customer_id = x.customer_id"
        engine.materialize(f"cube_seg_{period}", sql.kpi_cube(period, last, "g.segment_id", join))
        parts.append(("segment", f"cube_seg_{period} c", _GROUP_EXPR["segment"]))
    table = engine.query(sql.kpi_series(period, last, parts))
    engine.drop(f"cube_{period}")
    if "segment" in options.breakdowns:
        engine.drop(f"cube_seg_{period}")
    breakdowns = _col(table, "breakdown").astype(str)
    out: dict[str, dict[str, Any]] = {}
    for breakdown in options.breakdowns:
        rows = table.take(pa.array(np.flatnonzero(breakdowns == breakdown)))
        out.update(_kpi_payloads(rows, calendar, breakdown, options, month_calendar))
    return out


def _group_label(breakdown: str, raw: str, options: Options, month_calendar: Calendar) -> str:
    if breakdown == "cohort":
        return month_calendar_label(int(raw), month_calendar)
    if breakdown == "segment":
        return options.segment_names.get(raw, f"segment {raw}")
    return raw


def month_calendar_label(k: int, month_calendar: Calendar) -> str:
    # Cohort months are indexed from the first purchase's month, the same origin as every calendar.
    start = month_calendar.starts[0]
    year, month = divmod(start.year * 12 + start.month - 1 + k, 12)
    return f"{year:04d}-{month + 1:02d}"


def _kpi_payloads(
    table: pa.Table, calendar: Calendar, breakdown: str, options: Options, month_calendar: Calendar
) -> dict[str, dict[str, Any]]:
    n_periods = calendar.last_index + 1
    labels = [calendar.label(k) for k in range(n_periods)]
    starts = [calendar.starts[k].isoformat() for k in range(n_periods)]
    partial = [calendar.is_partial(k) for k in range(n_periods)]
    per_kpi: dict[kpis.Kpi, dict[str, list[float | None]]] = {k: {} for k in kpis.Kpi}
    # Rows arrive ordered by (breakdown, group, k): each group is a run of n_periods rows.
    groups = _col(table, "grp").astype(str)
    if groups.size % n_periods:
        raise RuntimeError(f"kpi series of {breakdown!r} are not dense over {n_periods} periods")
    measures = {
        m: np.nan_to_num(_col(table, m).astype(np.float64)).reshape(-1, n_periods)
        for m in table.column_names if m not in ("breakdown", "grp", "k")
    }
    for i, group in enumerate(groups[::n_periods].tolist()):
        label = _group_label(breakdown, group, options, month_calendar)
        for kpi, values in kpis.derive({m: v[i] for m, v in measures.items()}).items():
            per_kpi[kpi][label] = kpis.to_json_values(values)
    out = {}
    for kpi, by_group in per_kpi.items():
        payload: dict[str, Any] = {
            "kpi": kpi.value, "period": calendar.period.value, "breakdown": breakdown,
            "labels": labels, "starts": starts, "partial": partial, "groups": dict(sorted(by_group.items())),
            "formula": kpis.CATALOG[kpi].formula,
        }
        if kpi in kpis.NOT_AVAILABLE:
            payload["note"] = kpis.NOT_AVAILABLE[kpi]
        elif kpi is kpis.Kpi.RETENTION_COST and not options.members_available:
            payload["note"] = "rewards redemptions not recorded yet; messaging cost is 0 until engagement"
        out[f"kpi/{calendar.period}/{breakdown}/{kpi.value}"] = payload
    return out


def cohort_result(engine: Engine, calendar: Calendar, source: str) -> dict[str, Any]:
    table = engine.query(sql.cohorts(calendar.period, calendar.last_index, source))
    cohort = _col(table, "cohort").astype(np.int64)
    cohorts = []
    for c in sorted(set(cohort.tolist())):
        rows = np.flatnonzero(cohort == c)
        rows = rows[np.argsort(_col(table, "n")[rows])]

        def values(name: str, rows: np.ndarray = rows) -> list[float]:
            return [round(float(v), 10) for v in _col(table, name)[rows]]

        customers = values("customers")
        cohorts.append(
            {
                "cohort": calendar.label(c),
                "start": calendar.starts[c].isoformat(),
                "size": int(customers[0]),
                "customers": customers,
                "customers_in_or_after": values("customers_in_or_after"),
                "revenue": values("revenue"),
                "revenue_in_or_after": values("revenue_in_or_after"),
            }
        )
    return {"period": calendar.period.value, "cohorts": cohorts}


def lifecycle_result(engine: Engine, calendar: Calendar) -> dict[str, Any]:
    table = engine.query(sql.lifecycle(calendar.period, calendar.last_index))
    n = calendar.last_index + 1
    counts = {s: [0] * n for s in LIFECYCLE_STATES}
    revenue = {s: [0.0] * n for s in LIFECYCLE_STATES}
    for k, state, customers, rev in zip(
        _col(table, "k"), _col(table, "state"), _col(table, "customers"), _col(table, "revenue"), strict=True
    ):
        counts[str(state)][int(k)] = int(customers)
        revenue[str(state)][int(k)] = round(float(rev), 10)
    return {
        "period": calendar.period.value,
        "labels": [calendar.label(k) for k in range(n)],
        "partial": [calendar.is_partial(k) for k in range(n)],
        "customers": counts,
        "revenue": revenue,
    }


def funnel_result(engine: Engine, options: Options) -> dict[str, Any]:
    row = engine.query(sql.funnel(options.loyal_min_orders, list(options.advocacy_event_types))).to_pylist()[0]
    stages = []
    previous: int | None = None
    for stage in FUNNEL_STAGES:
        count = int(row[stage] or 0)
        stages.append(
            {
                "stage": stage,
                "customers": count,
                "conversion_from_previous": None if not previous else round(count / previous, 10),
                "dropped_from_previous": None if previous is None else previous - count,
            }
        )
        previous = count
    return {
        "stages": stages,
        "loyal_min_orders": options.loyal_min_orders,
        "advocacy_event_types": list(options.advocacy_event_types),
    }


def program_result(engine: Engine, options: Options) -> dict[str, Any]:
    as_of = day_number(options.as_of)
    groups = {}
    for row in engine.query(sql.program_members_vs_non(as_of)).to_pylist():
        orders, revenue, customers = int(row["orders"]), float(row["revenue"]), int(row["customers"])
        groups[row["grp"]] = {
            "customers": customers,
            "orders": orders,
            "revenue": round(revenue, 10),
            "average_order_value": round(revenue / orders, 10) if orders else None,
            "purchase_frequency": round(orders / customers, 10) if customers else None,
        }
    ba = engine.query(sql.program_before_after(as_of)).to_pylist()[0]

    def side(orders: Any, revenue: Any, days: Any) -> dict[str, Any]:
        o, r, d = int(orders or 0), float(revenue or 0.0), int(days or 0)
        return {
            "orders": o,
            "revenue": round(r, 10),
            "exposure_days": d,
            "average_order_value": round(r / o, 10) if o else None,
            "orders_per_30_days": round(30.0 * o / d, 10) if d else None,
        }

    payload: dict[str, Any] = {
        "window_days": 365,
        "members_vs_non_members": groups,
        "before_after_joining": {
            "members": int(ba["members"] or 0),
            "before": side(ba["orders_before"], ba["revenue_before"], ba["days_before"]),
            "after": side(ba["orders_after"], ba["revenue_after"], ba["days_after"]),
        },
    }
    if not options.members_available:
        payload["note"] = "no loyalty members recorded yet (the ledger/tiers modules provide them)"
    return payload


def rfm_result(engine: Engine, options: Options) -> dict[str, Any]:
    engine.materialize("rfm", sql.rfm_scores(day_number(options.as_of)))
    grid = [
        {
            "r": int(r["r"]),
            "f": int(r["f"]),
            "customers": int(r["customers"]),
            "monetary": round(float(r["monetary"]), 10),
        }
        for r in engine.query(sql.RFM_GRID).to_pylist()
    ]
    segments = [
        {
            "segment": r["segment"],
            "customers": int(r["customers"]),
            "avg_recency_days": round(float(r["avg_recency_days"]), 10),
            "avg_frequency": round(float(r["avg_frequency"]), 10),
            "avg_monetary": round(float(r["avg_monetary"]), 10),
            "monetary": round(float(r["monetary"]), 10),
        }
        for r in engine.query(sql.RFM_SEGMENTS).to_pylist()
    ]
    return {"as_of": options.as_of.isoformat(), "grid": grid, "segments": segments}


def compute_all(engine: Engine, options: Options, *, only: Iterable[str] | None = None) -> Computed:
    """Every precomputed result. ``only`` limits to some of kpi, cohorts, lifecycle, funnel, program, rfm."""
    wanted = set(only or ("kpi", "cohorts", "lifecycle", "funnel", "program", "rfm"))
    timer = _Timer()
    needs_periods = bool({"kpi", "cohorts", "lifecycle"} & wanted)
    needs_dims = bool({"kpi", "lifecycle", "program"} & wanted)
    calendars = timer.run("prepare", prepare, engine, options, needs_dims, timer)
    if calendars is None:
        return Computed({}, timer.timings, has_data=False)
    results: dict[str, dict[str, Any]] = {}
    periods = sorted({*options.kpi_periods, *options.cohort_periods}, key=list(Period).index) if needs_periods else []
    windowed = [p for p in periods if p in options.kpi_periods and {"kpi", "lifecycle"} & wanted]
    for period in periods:
        calendar = calendars[period]
        windows = period in windowed
        if windows and period is windowed[0]:
            timer.run("customer_days_x", engine.materialize, "customer_days_x", sql.CUSTOMER_DAYS_X)
        source = timer.run(
            f"periods_{period}", lambda c=calendar, w=windows: period_relations(engine, c, windows=w)
        )
        if windows and period is windowed[-1]:
            engine.drop("customer_days_x")
        if period in options.kpi_periods and "kpi" in wanted:
            results.update(timer.run(f"kpi_{period}", kpi_results, engine, calendar, calendars[Period.MONTH], options))
        if period in options.kpi_periods and "lifecycle" in wanted:
            results[f"lifecycle/{period}"] = timer.run(f"lifecycle_{period}", lifecycle_result, engine, calendar)
        if period in options.cohort_periods and "cohorts" in wanted:
            results[f"cohorts/{period}"] = timer.run(f"cohorts_{period}", cohort_result, engine, calendar, source)
        # Customer x period rows are the largest relations: keep only one period's alive at a time, so a
        # million customers' refresh stays in memory instead of spilling to disk.
        engine.drop(source)
    if "funnel" in wanted:
        results["funnel"] = timer.run("funnel", funnel_result, engine, options)
    if "program" in wanted:
        results["program_impact"] = timer.run("program", program_result, engine, options)
    if "rfm" in wanted:
        results["rfm"] = timer.run("rfm", rfm_result, engine, options)
    return Computed(results, timer.timings, has_data=True)
