"""Segments: the list and a builder whose live count updates as conditions change (HTMX)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from patronage.kit.errors import Conflict, ValidationFailed
from patronage.segments import fields, service
from patronage.segments.conditions import NO_VALUE_OPS, OPS
from patronage.segments.schemas import SegmentCreate
from patronage.web.console import customer_reads
from patronage.web.console.deps import Console, DbSession, P, console
from patronage.web.console.forms import field_errors
from patronage.web.i18n import N_
from patronage.web.route import WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ROWS = 3
MAX_ROWS = 12
OP_LABELS = {
    "eq": N_("is"), "ne": N_("is not"), "gt": N_("more than"), "gte": N_("at least"), "lt": N_("less than"),
    "lte": N_("at most"), "between": N_("between (a, b)"), "in": N_("is one of"), "not_in": N_("is none of"),
    "contains": N_("contains"), "starts_with": N_("starts with"), "is_set": N_("is set"),
    "is_not_set": N_("is not set"), "is_true": N_("is true"), "is_false": N_("is false"), "before": N_("before"),
    "after": N_("after"), "within_last_days": N_("in the last N days"),
    "not_within_last_days": N_("not in the last N days"), "any_of": N_("has any of"), "all_of": N_("has all of"),
    "none_of": N_("has none of"),
}
LIST_OPS = {"in", "not_in", "any_of", "all_of", "none_of"}


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return text


def _value(op: str, text: str, value_type: str) -> Any:
    """The condition's value from the form's text, typed as the field expects."""
    text = text.strip()
    if op in LIST_OPS:
        items = [t.strip() for t in text.split(",") if t.strip()]
        return [_number(i) for i in items] if value_type == "number" else items
    if op == "between":
        return [_number(t.strip()) if value_type == "number" else t.strip() for t in text.split(",")][:2]
    if op in ("within_last_days", "not_within_last_days") or value_type == "number":
        return _number(text)
    return text


def definition_from(form: dict[str, list[str]]) -> dict[str, Any] | None:
    """The condition tree of the builder's rows (rows without a field are ignored)."""
    types = {f["field"]: f["type"] for f in fields.catalog()}
    conditions = []
    for i in range(MAX_ROWS):
        name = (form.get(f"field_{i}") or [""])[0].strip()
        if not name:
            continue
        op = (form.get(f"op_{i}") or ["eq"])[0]
        leaf: dict[str, Any] = {"field": name, "op": op}
        if op not in NO_VALUE_OPS:
            leaf["value"] = _value(op, (form.get(f"value_{i}") or [""])[0], types.get(name, "string"))
        days = (form.get(f"days_{i}") or [""])[0].strip()
        if days.isdigit():
            leaf["within_days"] = int(days)
        event_type = (form.get(f"event_{i}") or [""])[0].strip()
        if event_type:
            leaf["event_type"] = event_type
        conditions.append(leaf)
    if not conditions:
        return None
    join = "or" if (form.get("match") or ["all"])[0] == "any" else "and"
    return {join: conditions}


def _rows(form: dict[str, list[str]], count: int) -> list[dict[str, str]]:
    keys = ("field", "op", "value", "days", "event")
    return [{k: (form.get(f"{k}_{i}") or [""])[0] for k in keys} for i in range(count)]


def _page(ctx: Console, form: dict[str, list[str]], *, errors: dict[str, str] | None = None,
          status_code: int = 200) -> Response:
    count = min(MAX_ROWS, max(ROWS, int((form.get("rows") or [str(ROWS)])[0] or ROWS)))
    catalog = [f for f in fields.catalog() if "<" not in f["field"]]
    ops = sorted({op for ops in OPS.values() for op in ops}, key=list(OP_LABELS).index)
    return ctx.render("console/segments.html", {
        "segments": customer_reads.segments(ctx.session, ctx.workspace.id), "catalog": catalog,
        "ops": [(op, ctx._(OP_LABELS[op])) for op in ops], "rows": _rows(form, count), "count": count,
        "name": (form.get("name") or [""])[0], "description": (form.get("description") or [""])[0],
        "match": (form.get("match") or ["all"])[0], "errors": errors or {},
    }, status_code=status_code)


@router.get("/console/segments")
def segments_page(request: Request, *, session: DbSession) -> Response:
    ctx = console(request, session, P.SEGMENTS_READ)
    return _page(ctx, parse_qs(request.url.query))


@router.get("/console/segments/preview")
def preview(request: Request, *, session: DbSession) -> Response:
    """The live count of the builder's conditions (a read: nothing is stored)."""
    ctx = console(request, session, P.SEGMENTS_READ)
    definition = definition_from(parse_qs(request.url.query))
    if definition is None:
        return ctx.render("console/_segment_count.html", {"result": None, "errors": {}})
    try:
        result = service.preview(session, ctx.workspace.id, definition, sample_size=5)
    except ValidationFailed as exc:
        return ctx.render("console/_segment_count.html", {"result": None, "errors": field_errors(exc)})
    return ctx.render("console/_segment_count.html", {"result": result, "errors": {}})


@router.post("/console/segments")
async def create(request: Request) -> Response:
    form = await request.form()
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        values.setdefault(key, []).append(str(value))
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_create, request, values)


def _create(request: Request, form: dict[str, list[str]]) -> Response:
    session = request.state.session
    ctx = console(request, session, P.SEGMENTS_MANAGE, csrf_token=(form.get("csrf_token") or [""])[0])
    try:
        body = SegmentCreate(name=(form.get("name") or [""])[0].strip(),
                             description=(form.get("description") or [""])[0], kind="dynamic",
                             definition=definition_from(form))
        service.create_segment(session, ctx.workspace.id, body, actor=ctx.principal.actor)
    except (ValidationError, ValidationFailed, Conflict) as exc:
        session.rollback()
        errors = field_errors(exc) if not isinstance(exc, Conflict) else {"name": exc.detail}
        return _page(ctx, form, errors=errors, status_code=422)
    return redirect(request, "/console/segments?done=created")


@router.post("/console/segments/{segment_id}/delete")
def delete(request: Request, *, session: DbSession, segment_id: int, csrf_token: Annotated[str, Form()]) -> Response:
    ctx = console(request, session, P.SEGMENTS_MANAGE, csrf_token=csrf_token)
    service.delete_segment(session, ctx.workspace.id, segment_id, actor=ctx.principal.actor)
    return redirect(request, "/console/segments?done=deleted")
