"""The dashboard: KPI tiles, retention, cohorts, RFM, funnel, lifecycle, tiers, goals, liability.

Everything on the page comes from the analytics domain's precomputed results (one indexed query for all
of them), so the page costs the same for 1,000 customers or 1,000,000. The points liability is a live
ledger report and loads as a fragment after the page. "Refresh analytics" queues the analytics refresh
job and polls its status.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from patronage.analytics import goals
from patronage.analytics import service as analytics
from patronage.analytics.kpis import Kpi
from patronage.analytics.repository import GoalRepository
from patronage.analytics.schemas import GoalCreate
from patronage.web.console import dashboard_data as data
from patronage.web.console.analytics_reads import latest_refresh, liability_summary, results_by_keys
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.i18n import translator
from patronage.web.rendering import is_htmx
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ACTIVE = ("queued", "running")


def dashboard_model(ctx: Console) -> dict[str, Any]:
    """Everything the dashboard shows, from the precomputed results (JSON-able, translated)."""
    ws = ctx.workspace
    tr = translator(ctx.language)
    from patronage.web.formatting import Formatter

    fmt = Formatter(ctx.language, ws.timezone)
    found = {key: row.payload for key, row in results_by_keys(ctx.session, ws.id, data.KEYS).items()}
    kpi = {k: found.get(f"kpi/month/all/{k.value}") for k, *_ in data.TILES}
    model: dict[str, Any] = {"ready": kpi[Kpi.REVENUE] is not None, "tiles": [], "charts": {}}
    if not model["ready"]:
        return model
    model["tiles"] = [data.tile(p, tr.gettext(label), unit, better, fmt=fmt, currency=ws.currency)
                      for k, label, unit, better in data.TILES if (p := kpi[k]) is not None]
    charts: dict[str, Any] = model["charts"]
    crr = kpi[Kpi.CRR]
    if crr is not None:
        charts["retention"] = data.retention(crr, kpi[Kpi.CHURN], kpi[Kpi.ACTIVE], fmt, tr)
    if (payload := found.get("cohorts/month")) is not None:
        charts["cohorts"] = data.cohorts(payload, fmt)
    if (payload := found.get("rfm")) is not None:
        charts["rfm"] = data.rfm(payload, tr)
    if (payload := found.get("funnel")) is not None:
        charts["funnel"] = data.funnel(payload, tr)
    if (payload := found.get("lifecycle/month")) is not None:
        charts["lifecycle"] = data.lifecycle(payload, fmt, tr)
    if (payload := found.get(data.TIER_KEY)) is not None:
        charts["tiers"] = data.tiers(payload, tr)
    return model


def _goals(ctx: Console) -> list[dict[str, Any]]:
    from patronage.web.formatting import Formatter

    fmt, tr = Formatter(ctx.language, ctx.workspace.timezone), translator(ctx.language)
    return [data.goal_view(goals.to_out(ctx.session, g), fmt, tr, ctx.workspace.currency)
            for g in GoalRepository(ctx.session, ctx.workspace.id).all()]


@router.get("/")
def dashboard(request: Request, *, session: DbSession) -> Response:
    ctx = console(request, session, P.WORKSPACE_READ)
    if not ctx.can(P.ANALYTICS_READ):
        return ctx.render("console/welcome.html")
    model = dashboard_model(ctx)
    refresh = latest_refresh(session, ctx.workspace.id)
    return ctx.render("console/dashboard.html", {
        "model": model, "refresh": refresh, "active": refresh is not None and refresh.status in ACTIVE,
        "goals": _goals(ctx),
        "kpis": [(k.value, ctx._(data.KPI_LABELS[k])) for k in Kpi if k not in (Kpi.NPS, Kpi.CSAT)],
    })


@router.get("/console/dashboard.json")
def dashboard_json(request: Request, *, session: DbSession) -> Response:
    ctx = console(request, session, P.ANALYTICS_READ)
    model = dashboard_model(ctx)
    model["tiles"] = [asdict(t) for t in model["tiles"]]
    return JSONResponse(model, headers={"Cache-Control": "no-store"})


@router.get("/console/analytics/refresh")
def refresh_status(request: Request, *, session: DbSession, was: str | None = None) -> Response:
    """The refresh status fragment; polled while a refresh is queued or running."""
    ctx = console(request, session, P.ANALYTICS_READ)
    refresh = latest_refresh(session, ctx.workspace.id)
    active = refresh is not None and refresh.status in ACTIVE
    if was == "active" and not active and refresh is not None and refresh.status == "succeeded":
        return Response(status_code=204, headers={"HX-Refresh": "true"})  # new results: reload the page
    return ctx.render("console/_refresh.html", {"refresh": refresh, "active": active})


@router.post("/console/analytics/refresh")
def refresh(request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.ANALYTICS_READ, csrf_token=csrf_token)
    started = analytics.request_refresh(session, ctx.workspace.id)
    if not is_htmx(request):
        return redirect(request, "/?done=queued")
    return ctx.render("console/_refresh.html", {"refresh": started, "active": True})


@router.get("/console/dashboard/liability")
def liability_fragment(request: Request, *, session: DbSession) -> Response:
    ctx = console(request, session, P.LOYALTY_READ)
    return ctx.render("console/_liability.html", {"report": liability_summary(session, ctx.workspace.id)})


@router.post("/console/goals")
def create_goal(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()], name: Annotated[str, Form()],
    kpi: Annotated[str, Form()], target: Annotated[str, Form()], deadline: Annotated[str, Form()],
    comparator: Annotated[str, Form()] = "gte",
) -> Response:
    ctx = console(request, session, P.ANALYTICS_READ, csrf_token=csrf_token)
    _ = ctx._
    try:
        body = GoalCreate(name=name, kpi=kpi, target=float(target) / (100 if _is_ratio(kpi) else 1),
                          deadline=date.fromisoformat(deadline), comparator=comparator)
    except (ValidationError, ValueError):
        session.rollback()
        return ctx.render("console/message.html", {
            "title": _("Goal not created"), "error": True, "back": "/",
            "message": _("Check the goal: it needs a name, a KPI, a number and a date."),
        }, status_code=422)
    goals.create_goal(session, ctx.workspace.id, body, actor=ctx.principal.actor)
    return redirect(request, "/?done=created")


def _is_ratio(kpi: str) -> bool:
    from patronage.analytics.kpis import CATALOG

    try:
        return CATALOG[Kpi(kpi)].unit == "ratio"
    except ValueError:
        return False
