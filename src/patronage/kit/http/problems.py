"""Render every error as RFC 9457 problem+json with a stable ``code``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from patronage.kit.errors import (
    PROBLEM_JSON,
    MalformedBody,
    PatronageError,
    RateLimited,
    TryAgain,
    ValidationFailed,
    ValueNotStorable,
)
from patronage.kit.http.middleware import REQUEST_ID_SCOPE_KEY

log = logging.getLogger("patronage.http")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class Problem(BaseModel):
    """RFC 9457 problem details. ``code`` is stable and meant for programs; ``detail`` for people."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": code.replace("_", " "), "content": {PROBLEM_JSON: {}}}
    for status, code in _STATUS_CODES.items()
    if status in (400, 401, 403, 404, 409, 413, 422, 429)
}


def problem_response(error: PatronageError, request: Request, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error.to_problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        source, rest = parts[0], parts[1:]
        return ".".join(rest) if source == "body" and rest else ".".join(parts)
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field; it is not part of this resource's writable fields"
    return str(error.get("msg", "invalid value"))


def validation_problem(errors: list[dict[str, Any]]) -> PatronageError:
    malformed = [e for e in errors if e.get("type") == "json_invalid"]
    if malformed:
        ctx = malformed[0].get("ctx") or {}
        return MalformedBody(f"body is not valid JSON: {ctx.get('error', 'parse error')}")
    items = [
        {"field": _field_name(e.get("loc", ())), "message": _message(e), "type": e.get("type", "invalid")}
        for e in errors
    ]
    summary = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5])
    return ValidationFailed(summary or "invalid request", errors=items)


def install(app: FastAPI) -> None:
    @app.exception_handler(PatronageError)
    async def _domain(request: Request, exc: PatronageError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited) and "retry_after" in exc.extra:
            headers = {"Retry-After": str(exc.extra["retry_after"])}
        return problem_response(exc, request, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_problem(list(exc.errors())), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        error = PatronageError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
        error.code = code  # type: ignore[misc]
        error.title = code.replace("_", " ").capitalize()  # type: ignore[misc]
        return problem_response(error, request, dict(exc.headers or {}))

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _not_storable(request: Request, exc: Exception) -> JSONResponse:
        # The last line of defence: the database (or date arithmetic) refused a value that input
        # validation let through — a number out of a column's range, text too long for its column, a
        # date past year 9999. The client sent it, so it is a 422, not a 500; the field lacks a bound,
        # which the warning (and the schema fuzzing in tests/battery) points out.
        log.warning("value refused by the database", exc_info=exc, extra={"path": request.url.path})
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        return problem_response(ValueNotStorable(f"a value in the request cannot be stored: {reason}"), request)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if not is_transient(exc):
            return await _unexpected(request, exc)
        log.warning("transaction lost to a concurrent one", extra={"path": request.url.path,
                                                                   "reason": str(exc.orig)[:200]})
        return problem_response(TryAgain(), request, {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this handler outside every middleware, so it echoes the request id itself.
        request_id = request.scope.get(REQUEST_ID_SCOPE_KEY)
        log.exception("unhandled error", extra={"path": request.url.path, "request_id": request_id})
        error = PatronageError(
            "An unexpected error occurred; it has been logged.",
            **({"request_id": request_id} if request_id else {}),
        )
        error.status, error.code, error.title = 500, "internal_error", "Internal error"  # type: ignore[misc]
        return problem_response(error, request, {"X-Request-Id": request_id} if request_id else None)


# PostgreSQL: deadlock detected, serialization failure, lock not available. SQLite: the write lock was
# not granted within busy_timeout.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def is_transient(exc: DBAPIError) -> bool:
    """Whether the statement failed only because of a concurrent transaction (sending it again works)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in TRANSIENT_SQLSTATES
    return "database is locked" in str(exc.orig)
