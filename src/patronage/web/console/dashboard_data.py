"""The dashboard's view model, shaped from the precomputed analytics payloads. Pure: no database.

Tiles compare the last complete month with the month before; charts get compact series that
static/console.js turns into ECharts options. Every label is translated here, so the page and its
charts speak the console's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from patronage.analytics.kpis import Kpi
from patronage.web.formatting import Formatter
from patronage.web.i18n import N_, Translator

TILES: list[tuple[Kpi, str, str, bool]] = [  # kpi, label, unit, higher is better
    (Kpi.REVENUE, N_("Revenue"), "money", True),
    (Kpi.ORDERS, N_("Orders"), "count", True),
    (Kpi.ACTIVE, N_("Active customers"), "count", True),
    (Kpi.NEW, N_("New customers"), "count", True),
    (Kpi.CRR, N_("Retention rate"), "ratio", True),
    (Kpi.REPEAT_PURCHASE_RATE, N_("Repeat purchase rate"), "ratio", True),
    (Kpi.AOV, N_("Average order value"), "money", True),
    (Kpi.CHURN, N_("Churn rate"), "ratio", False),
]
KPI_LABELS: dict[str, str] = {
    Kpi.CRR: N_("Retention rate"), Kpi.CHURN: N_("Churn rate"), Kpi.REPEAT_PURCHASE_RATE: N_("Repeat purchase rate"),
    Kpi.PURCHASE_FREQUENCY: N_("Purchase frequency"), Kpi.AOV: N_("Average order value"),
    Kpi.HISTORICAL_CLV: N_("Historical customer lifetime value"), Kpi.REVENUE_CHURN: N_("Revenue churn"),
    Kpi.GROWTH: N_("Customer growth rate"), Kpi.RETENTION_COST: N_("Retention cost"),
    Kpi.ACTIVE: N_("Active customers"), Kpi.NEW: N_("New customers"), Kpi.ORDERS: N_("Orders"),
    Kpi.REVENUE: N_("Revenue"), Kpi.NPS: N_("Net promoter score"), Kpi.CSAT: N_("Customer satisfaction"),
}
TIER_KEY = f"kpi/month/tier/{Kpi.ACTIVE.value}"
KEYS = [f"kpi/month/all/{k.value}" for k, *_ in TILES] + [TIER_KEY, "cohorts/month", "rfm", "funnel", "lifecycle/month"]
TREND_MONTHS = 24
COHORTS_SHOWN = 12
LIFECYCLE_MONTHS = 12

STAGES = {"prospect": N_("Prospects"), "new": N_("New"), "active": N_("Active"), "loyal": N_("Loyal"),
          "advocate": N_("Advocates")}
LIFECYCLE = {"new": N_("New"), "returning": N_("Returning"), "resurrecting": N_("Resurrected"),
             "dormant": N_("Dormant")}
RFM_SEGMENTS = {
    "Champions": N_("Champions"), "Loyal": N_("Loyal"), "Potential loyalist": N_("Potential loyalist"),
    "New customers": N_("New customers"), "Promising": N_("Promising"), "Need attention": N_("Need attention"),
    "About to sleep": N_("About to sleep"), "At risk": N_("At risk"), "Can't lose them": N_("Can't lose them"),
    "Hibernating": N_("Hibernating"), "Lost": N_("Lost"),
}
TIER_NAMES = {"non_member": N_("Not a member"), "no_tier": N_("No tier")}


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    previous: str
    change: str | None  # "+3.2 %" or "+1.5 pp"
    good: bool | None  # None: no change to judge
    period: str
    spark: list[float | None]


def _complete(payload: dict[str, Any]) -> list[int]:
    return [i for i, partial in enumerate(payload["partial"]) if not partial]


def _show(value: float | None, unit: str, fmt: Formatter, currency: str) -> str:
    if value is None:
        return "—"
    if unit == "money":
        return fmt.money(value, currency)
    if unit == "ratio":
        return fmt.percent(value)
    return fmt.number(value)


def tile(payload: dict[str, Any], label: str, unit: str, higher_is_better: bool, *, fmt: Formatter,
         currency: str) -> Tile:
    series: list[float | None] = payload["groups"].get("all", [])
    done = _complete(payload)
    last = done[-1] if done else None
    prev = done[-2] if len(done) > 1 else None
    value = series[last] if last is not None else None
    before = series[prev] if prev is not None else None
    change: str | None = None
    good: bool | None = None
    if value is not None and before is not None:
        delta = value - before
        if unit == "ratio":
            change = f"{delta * 100:+.1f} pp"
        elif before:
            change = f"{delta / abs(before) * 100:+.1f} %"
        if delta:
            good = (delta > 0) == higher_is_better
    period = fmt.month(date.fromisoformat(payload["starts"][last])) if last is not None else "—"
    spark = [series[i] for i in done[-12:]]
    return Tile(label, _show(value, unit, fmt, currency), _show(before, unit, fmt, currency), change, good, period,
                spark)


def months(payload: dict[str, Any], indexes: list[int], fmt: Formatter) -> list[str]:
    return [fmt.month(date.fromisoformat(payload["starts"][i])) for i in indexes]


def retention(crr: dict[str, Any], churn: dict[str, Any] | None, active: dict[str, Any] | None, fmt: Formatter,
              tr: Translator) -> dict[str, Any]:
    done = _complete(crr)[-TREND_MONTHS:]
    _ = tr.gettext
    out: dict[str, Any] = {
        "labels": months(crr, done, fmt),
        "series": [{"name": _("Retention rate"), "kind": "ratio",
                    "values": [crr["groups"]["all"][i] for i in done]}],
    }
    if churn is not None:
        out["series"].append({"name": _("Churn rate"), "kind": "ratio",
                              "values": [churn["groups"]["all"][i] for i in done]})
    if active is not None:
        out["bars"] = {"name": _("Active customers"), "values": [active["groups"]["all"][i] for i in done]}
    return out


def cohorts(payload: dict[str, Any], fmt: Formatter) -> dict[str, Any]:
    rows = payload["cohorts"][-COHORTS_SHOWN:]
    width = max((len(c["customers"]) for c in rows), default=0)
    cells = []
    for y, cohort in enumerate(rows):
        size = cohort["size"] or 0
        for x, customers in enumerate(cohort["customers"][:COHORTS_SHOWN]):
            cells.append([x, y, round(customers / size, 4) if size else None])
    return {
        "cohorts": [fmt.month(date.fromisoformat(c["start"])) for c in rows],
        "sizes": [c["size"] for c in rows],
        "offsets": list(range(min(width, COHORTS_SHOWN))),
        "cells": cells,
    }


def rfm(payload: dict[str, Any], tr: Translator) -> dict[str, Any]:
    _ = tr.gettext
    return {
        "cells": [[c["f"] - 1, c["r"] - 1, c["customers"]] for c in payload["grid"]],
        "segments": sorted(
            ({"name": _(RFM_SEGMENTS.get(s["segment"], s["segment"])), "customers": s["customers"]}
             for s in payload["segments"]),
            key=lambda s: -int(s["customers"]),
        ),
    }


def funnel(payload: dict[str, Any], tr: Translator) -> list[dict[str, Any]]:
    _ = tr.gettext
    return [{"name": _(STAGES.get(s["stage"], s["stage"])), "value": s["customers"]} for s in payload["stages"]]


def lifecycle(payload: dict[str, Any], fmt: Formatter, tr: Translator) -> dict[str, Any]:
    _ = tr.gettext
    done = [i for i, p in enumerate(payload["partial"]) if not p][-LIFECYCLE_MONTHS:]
    labels = [fmt.month(date.fromisoformat(f"{payload['labels'][i]}-01")) if len(payload["labels"][i]) == 7
              else payload["labels"][i] for i in done]
    series = []
    for state, name in LIFECYCLE.items():
        values = payload["customers"].get(state, [])
        sign = -1 if state == "dormant" else 1
        series.append({"name": _(name), "values": [sign * values[i] if i < len(values) else 0 for i in done]})
    return {"labels": labels, "series": series}


def tiers(payload: dict[str, Any], tr: Translator) -> list[dict[str, Any]]:
    _ = tr.gettext
    done = _complete(payload)
    if not done:
        return []
    last = done[-1]
    out = [{"name": _(TIER_NAMES[g]) if g in TIER_NAMES else g, "value": values[last] or 0}
           for g, values in payload["groups"].items()]
    return sorted(out, key=lambda t: -float(t["value"]))


def goal_view(goal: Any, fmt: Formatter, tr: Translator, currency: str) -> dict[str, Any]:
    """A goal and its progress as the dashboard shows it."""
    from patronage.analytics.kpis import CATALOG

    _ = tr.gettext
    unit = CATALOG[Kpi(goal.kpi)].unit
    p = goal.progress
    return {
        "name": goal.name, "kpi": _(KPI_LABELS.get(goal.kpi, goal.kpi)),
        "target": _show(goal.target, unit, fmt, currency), "deadline": fmt.date(goal.deadline),
        "comparator": "≥" if goal.comparator == "gte" else "≤",
        "current": _show(p.current if p else None, unit, fmt, currency),
        "forecast": _show(p.forecast_at_deadline if p else None, unit, fmt, currency),
        "share": max(0.0, min(1.0, (p.percent_of_way or 0) / 100)) if p else 0.0,
        "percent": fmt.percent((p.percent_of_way or 0) / 100, 0) if p and p.percent_of_way is not None else "—",
        "achieved": bool(p and p.achieved), "on_track": p.on_track if p else None, "note": p.note if p else None,
    }
