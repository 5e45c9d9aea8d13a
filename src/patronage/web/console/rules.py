"""Earning rules: rule sets, a JSON editor for their versions (errors shown inline, checked as you type),
publishing, "what would this order earn?" and backtests with live progress."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from patronage.earning import backtest, preview, rulesets
from patronage.earning.models import VersionStatus
from patronage.earning.repository import RuleSetRepository, backtests_page
from patronage.earning.rules_format import parse_document
from patronage.earning.schemas import BacktestCreate, PreviewIn
from patronage.kit.errors import Conflict, ValidationFailed
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.console.forms import field_errors, optional, parse_json, pretty
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
BASE = "/console/program/rules"
EXAMPLE = {
    "stacking": "multiply",
    "rules": [
        {"key": "base", "name": "1 point per unit of currency", "trigger": "order",
         "effect": {"type": "per_currency", "points": 1}},
        {"key": "weekend", "name": "Double points at weekends", "trigger": "order",
         "when": {"time": {"days": ["sat", "sun"]}}, "effect": {"type": "multiplier", "factor": 2}},
    ],
}


def _errors_from(exc: ValidationFailed) -> list[dict[str, str]]:
    return [{"field": k, "message": v} for k, v in field_errors(exc).items()]


@router.get(BASE)
def rule_sets(request: Request, *, session: DbSession) -> Response:
    ctx = console(request, session, P.LOYALTY_READ)
    return _list_page(ctx)


def _list_page(ctx: Console, *, name: str = "", text: str | None = None, errors: list[dict[str, str]] | None = None,
               status_code: int = 200) -> Response:
    sets = rulesets.list_rule_sets(ctx.session, ctx.workspace.id, include_archived=True)
    return ctx.render("console/rules.html", {
        "rule_sets": sets, "name": name, "document": text if text is not None else pretty(EXAMPLE),
        "errors": errors or [],
    }, status_code=status_code)


@router.post(BASE)
def create_rule_set(
    request: Request, *, session: DbSession, csrf_token: Annotated[str, Form()],
    name: Annotated[str, Form(max_length=200)],
    document: Annotated[str, Form(max_length=200_000)], description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    doc, problem = parse_json(document)
    if problem:
        return _list_page(ctx, name=name, text=document, errors=[{"field": "JSON", "message": problem}],
                          status_code=422)
    try:
        created = rulesets.create_rule_set(session, ctx.workspace.id, name=name.strip() or "Rules",
                                           description=description, document=doc, actor=ctx.principal.actor)
    except (ValidationFailed, Conflict) as exc:
        session.rollback()
        errors = _errors_from(exc) if isinstance(exc, ValidationFailed) else [{"field": "name", "message": exc.detail}]
        return _list_page(ctx, name=name, text=document, errors=errors, status_code=exc.status)
    return redirect(request, f"{BASE}/{created.id}?done=created")


@router.post(f"{BASE}/validate")
def validate(request: Request, *, session: DbSession, document: Annotated[str, Form(max_length=200_000)]) -> Response:
    """Live check of the editor's text (HTMX, as you type): the same validation the save runs."""
    ctx = console(request, session, P.LOYALTY_READ, csrf_token=request.headers.get("x-csrf-token"))
    doc, problem = parse_json(document)
    errors = [{"field": "JSON", "message": problem}] if problem else []
    if not problem:
        try:
            parse_document(doc)
        except ValidationFailed as exc:
            errors = _errors_from(exc)
    return ctx.render("console/_rule_errors.html", {"errors": errors, "checked": True})


def _detail(ctx: Console, rule_set_id: int, version: int | None, *, text: str | None = None,
            errors: list[dict[str, str]] | None = None, status_code: int = 200) -> Response:
    ws = ctx.workspace.id
    rule_set = rulesets.get_rule_set(ctx.session, ws, rule_set_id)
    versions = RuleSetRepository(ctx.session, ws).versions(rule_set_id)
    current = next((v for v in versions if v.version == version), versions[-1] if versions else None)
    backtests = [b for b in backtests_page(ctx.session, ws, cursor=None, limit=20)[0] if b.rule_set_id == rule_set_id]
    return ctx.render("console/rule_set.html", {
        "rule_set": rule_set, "versions": versions, "current": current,
        "editable": current is not None and current.status == VersionStatus.DRAFT,
        "document": text if text is not None else pretty(current.document if current else EXAMPLE),
        "errors": errors or [], "backtests": backtests[:5], "today": date.today().isoformat(),
        "year_ago": date.today().replace(year=date.today().year - 1).isoformat(),
    }, status_code=status_code)


@router.get(BASE + "/{rule_set_id}")
def rule_set_page(request: Request, *, session: DbSession, rule_set_id: int, version: int | None = None) -> Response:
    return _detail(console(request, session, P.LOYALTY_READ), rule_set_id, version)


@router.post(BASE + "/{rule_set_id}/versions")
def save_version(
    request: Request, *, session: DbSession, rule_set_id: int, csrf_token: Annotated[str, Form()],
    document: Annotated[str, Form(max_length=200_000)], version: Annotated[int | None, Form()] = None,
    notes: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Save the editor: into the draft being edited, or as a new draft when editing a published version."""
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    doc, problem = parse_json(document)
    if problem:
        return _detail(ctx, rule_set_id, version, text=document, errors=[{"field": "JSON", "message": problem}],
                       status_code=422)
    try:
        current = RuleSetRepository(session, ctx.workspace.id).version(rule_set_id, version) if version else None
        if current is not None and current.status == VersionStatus.DRAFT:
            saved = rulesets.update_version(session, ctx.workspace.id, rule_set_id, current.version, document=doc,
                                            notes=notes or None, actor=ctx.principal.actor)
        else:
            saved = rulesets.create_version(session, ctx.workspace.id, rule_set_id, document=doc, notes=notes,
                                            actor=ctx.principal.actor)
    except ValidationFailed as exc:
        session.rollback()
        return _detail(ctx, rule_set_id, version, text=document, errors=_errors_from(exc), status_code=422)
    return redirect(request, f"{BASE}/{rule_set_id}?version={saved.version}&done=saved")


@router.post(BASE + "/{rule_set_id}/versions/{version}/publish")
def publish(request: Request, *, session: DbSession, rule_set_id: int, version: int,
            csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    rulesets.publish(session, ctx.workspace.id, rule_set_id, version, actor=ctx.principal.actor)
    return redirect(request, f"{BASE}/{rule_set_id}?version={version}&done=published")


@router.post(BASE + "/{rule_set_id}/unpublish")
def unpublish(
    request: Request, *, session: DbSession, rule_set_id: int, csrf_token: Annotated[str, Form()],
) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    rulesets.unpublish(session, ctx.workspace.id, rule_set_id, actor=ctx.principal.actor)
    return redirect(request, f"{BASE}/{rule_set_id}?done=saved")


@router.post(BASE + "/{rule_set_id}/preview")
def preview_order(
    request: Request, *, session: DbSession, rule_set_id: int, csrf_token: Annotated[str, Form()],
    version: Annotated[int, Form()], amount: Annotated[str, Form()], quantity: Annotated[str, Form()] = "1",
    sku: Annotated[str, Form(max_length=100)] = "", category: Annotated[str, Form(max_length=200)] = "",
    channel: Annotated[str, Form(max_length=20)] = "", customer_id: Annotated[str, Form()] = "",
    first_order: Annotated[str | None, Form()] = None,
) -> Response:
    """What would this order earn under this version (with the other live rule sets)? Nothing is recorded."""
    ctx = console(request, session, P.LOYALTY_READ, csrf_token=csrf_token)
    try:
        qty = int(quantity or "1")
        unit = (float(amount.replace(",", ".")) / max(qty, 1))
        body = PreviewIn.model_validate({
            "rule_set_id": rule_set_id, "version": version, "customer_id": optional(customer_id),
            "order": {"lines": [{"quantity": qty, "unit_price": f"{unit:.4f}", "sku": optional(sku),
                                 "category": optional(category)}],
                      "channel": optional(channel), "first_order": True if first_order else None},
        })
        result: Any = preview.preview(session, ctx.workspace.id, body)
        error = None
    except (ValueError, ValidationError, ValidationFailed) as exc:
        result = None
        error = "; ".join(field_errors(exc).values()) if isinstance(exc, ValidationError | ValidationFailed) \
            else ctx._("Enter an amount and a whole quantity.")
    return ctx.render("console/_preview.html", {"result": result, "error": error})


@router.post(BASE + "/{rule_set_id}/backtests")
def start_backtest(
    request: Request, *, session: DbSession, rule_set_id: int, csrf_token: Annotated[str, Form()],
    version: Annotated[int, Form()], date_from: Annotated[str, Form()], date_to: Annotated[str, Form()],
) -> Response:
    ctx = console(request, session, P.LOYALTY_MANAGE, csrf_token=csrf_token)
    try:
        start = datetime.combine(date.fromisoformat(date_from), time.min, UTC)
        end = datetime.combine(date.fromisoformat(date_to), time.max, UTC)
        body = BacktestCreate(rule_set_id=rule_set_id, version=version, date_from=start, date_to=end)
    except (ValueError, ValidationError):
        return ctx.render("console/_backtest.html", {"error": ctx._("Choose a start date before the end date.")},
                          status_code=422)
    started = backtest.start(session, ctx.workspace.id, body, actor=ctx.principal.actor)
    return ctx.render("console/_backtest.html", {"bt": started, "error": None})


@router.get("/console/program/backtests/{backtest_id}")
def backtest_status(request: Request, *, session: DbSession, backtest_id: int) -> Response:
    """Progress (polled every second while it runs), then the report."""
    ctx = console(request, session, P.LOYALTY_READ)
    return ctx.render("console/_backtest.html", {"bt": backtest.get(session, ctx.workspace.id, backtest_id),
                                                 "error": None})
