"""The dashboard: KPI tiles, retention, cohorts, RFM, funnel, lifecycle, tiers, goals, liability.

Everything on the page is precomputed, so the page costs the same for 1,000 customers or 1,000,000: the
analytics domain's results (one indexed query for all of them) and the liability domain's latest snapshot
(one row). "Refresh analytics" queues the analytics refresh and a new liability snapshot, and polls.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from patronage.analytics import goals
from patronage.analytics import service as analytics
from patronage.analytics.kpis import Kpi
from patronage.analytics.repository import GoalRepository
from patronage.analytics.schemas import GoalCreate
from patronage.liability import service as liability
from patronage.web.console import dashboard_data as data
from patronage.web.console.analytics_reads import latest_refresh, results_by_keys
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.i18n import translator
from patronage.web.rendering import is_htmx
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ACTIVE = ("queued", "running")
LIABILITY_POLLS = 150  # every 2 s: five minutes of "computing…", then the card says the worker may be down


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
        **(_liability_card(ctx) if ctx.can(P.LOYALTY_READ) else {}),
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
    if ctx.can(P.LOYALTY_READ):  # the dashboard's other precomputed figure follows the refresh
        liability.request_snapshot(session, ctx.workspace.id)
    if not is_htmx(request):
        return redirect(request, "/?done=queued")
    return ctx.render("console/_refresh.html", {"refresh": started, "active": True})


def _liability_card(ctx: Console, *, since: str | None = None, tries: int = 0) -> dict[str, Any]:
    """The card's context. ``since``: the as-of time of the snapshot shown when a recompute was asked for
    ("" when there was none); the card polls until a newer snapshot exists or it gives up."""
    snapshot = liability.latest_snapshot(ctx.session, ctx.workspace.id)
    waiting = gave_up = False
    if since is not None:
        try:
            before = datetime.fromisoformat(since) if since else None
        except ValueError:
            before = None
        if before is not None and before.tzinfo is None:
            before = before.replace(tzinfo=UTC)
        fresh = snapshot is not None and (before is None or snapshot.as_of > before)
        waiting = not fresh and tries < LIABILITY_POLLS
        gave_up = not fresh and not waiting
    return {"snapshot": snapshot, "waiting": waiting, "gave_up": gave_up, "since": since or "", "tries": tries + 1}


@router.get("/console/dashboard/liability")
def liability_fragment(request: Request, *, session: DbSession, since: str | None = None, tries: int = 0) -> Response:
    ctx = console(request, session, P.LOYALTY_READ)
    return ctx.render("console/_liability.html", _liability_card(ctx, since=since, tries=max(tries, 0)))


@router.post("/console/dashboard/liability")
def recompute_liability(request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.LOYALTY_READ, csrf_token=csrf_token)
    shown = liability.latest_snapshot(session, ctx.workspace.id)
    liability.request_snapshot(session, ctx.workspace.id)
    if not is_htmx(request):
        return redirect(request, "/?done=queued")
    since = shown.as_of.isoformat() if shown is not None else ""
    return ctx.render("console/_liability.html", {**_liability_card(ctx, since=since), "waiting": True})


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
