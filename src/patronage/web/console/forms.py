"""Turning form input into the domains' schemas, and their errors into messages next to each field."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from patronage.kit.errors import PatronageError, ValidationFailed


def field_errors(error: ValidationError | PatronageError) -> dict[str, str]:
    """{field path: message} from a Pydantic error or a domain error (a 422 names its fields)."""
    out: dict[str, str] = {}
    if isinstance(error, ValidationError):
        for item in error.errors():
            path = ".".join(str(p) for p in item.get("loc", ())) or "__all__"
            out.setdefault(path, str(item.get("msg", "invalid")))
        return out
    items = error.extra.get("errors") if isinstance(error, ValidationFailed) else None
    for item in items or []:
        out.setdefault(str(item.get("field") or "__all__"), str(item.get("message")))
    if not out:
        out["__all__"] = error.detail
    return out


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None) or (None, "line 3, column 7: Expecting ',' delimiter")."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno}, column {exc.colno}: {exc.msg}"


def pretty(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def decimal_or_none(value: str | None) -> Decimal | None:
    value = optional(value)
    if value is None:
        return None
    try:
        return Decimal(value.replace(",", "."))
    except InvalidOperation:
        return None


def int_or_none(value: str | None) -> int | None:
    value = optional(value)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
