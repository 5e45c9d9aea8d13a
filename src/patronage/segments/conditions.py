"""Segment definitions: a condition tree, validated without a database.

    {"and": [node, ...]}   {"or": [node, ...]}   {"not": node}
    {"field": "orders_count", "op": "gte", "value": 3}
    {"field": "orders_in_window", "op": "gte", "value": 2, "within_days": 90}
    {"field": "event_count", "event_type": "page_view", "op": "gte", "value": 5, "within_days": 30}

Every error names its path, e.g. ``definition.and[1].or[0].value: must be a number``. A condition on a
value a customer does not have (no country, never ordered) is false, except ``is_not_set``; ``not`` is the
exact complement of its child (two-valued logic, never SQL's unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime
from typing import Any

from patronage.kit.errors import ValidationFailed

MAX_DEPTH = 12
MAX_CONDITIONS = 200
MAX_LIST = 1000


class Type:
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    LIST = "list"  # a set of strings per customer (tags, SKUs bought, segments)


OPS: dict[str, tuple[str, ...]] = {
    Type.NUMBER: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "is_set", "is_not_set"),
    Type.STRING: ("eq", "ne", "in", "not_in", "contains", "starts_with", "is_set", "is_not_set"),
    Type.BOOLEAN: ("is_true", "is_false"),
    Type.DATETIME: ("before", "after", "between", "within_last_days", "not_within_last_days", "is_set",
                    "is_not_set"),
    Type.LIST: ("any_of", "all_of", "none_of"),
}
NO_VALUE_OPS = frozenset({"is_set", "is_not_set", "is_true", "is_false"})


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    kind: str  # "days" (positive integer) | "string"


@dataclass(frozen=True)
class FieldInfo:
    """What validation needs to know about a field (fields.py adds how it compiles)."""

    name: str
    type: str
    params: tuple[Param, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Leaf:
    path: str
    field: str
    op: str
    value: Any
    params: dict[str, Any] = dataclass_field(default_factory=dict)
    value_type: str | None = None  # custom attributes: the type the value was validated as


@dataclass(frozen=True)
class Group:
    path: str
    op: str  # and | or | not
    children: tuple[Node, ...]


Node = Leaf | Group


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str, code: str = "invalid") -> None:
        self.items.append({"field": path, "message": message, "type": code})


def validate(tree: Any, resolve: Any, *, root: str = "definition") -> Node:
    """Parse and check ``tree``; ``resolve(name) -> FieldInfo | str`` (a string is why it is unknown).

    Raises ValidationFailed listing every problem with its path.
    """
    errors = _Errors()
    count = [0]
    node = _parse(tree, root, 0, resolve=resolve, errors=errors, count=count)
    if errors.items:
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors.items[:5])
        raise ValidationFailed(summary, errors=errors.items)
    assert node is not None
    return node


def _parse(  # noqa: PLR0911 - one early return per kind of malformed node
    raw: Any, path: str, depth: int, *, resolve: Any, errors: _Errors, count: list[int]
) -> Node | None:
    if depth > MAX_DEPTH:
        errors.add(path, f"conditions nest deeper than {MAX_DEPTH} levels")
        return None
    if not isinstance(raw, dict):
        errors.add(path, "must be an object: a condition or and/or/not")
        return None
    groups = [k for k in ("and", "or", "not") if k in raw]
    if groups:
        if len(raw) != 1:
            errors.add(path, f"a {groups[0]!r} group takes no other keys")
            return None
        op = groups[0]
        if op == "not":
            child = _parse(raw["not"], f"{path}.not", depth + 1, resolve=resolve, errors=errors, count=count)
            return Group(path, "not", (child,)) if child is not None else None
        items = raw[op]
        if not isinstance(items, list) or not items:
            errors.add(f"{path}.{op}", "must be a non-empty list of conditions")
            return None
        children = [
            _parse(c, f"{path}.{op}[{i}]", depth + 1, resolve=resolve, errors=errors, count=count)
            for i, c in enumerate(items)
        ]
        if any(c is None for c in children):
            return None
        return Group(path, op, tuple(c for c in children if c is not None))
    count[0] += 1
    if count[0] > MAX_CONDITIONS:
        if count[0] == MAX_CONDITIONS + 1:
            errors.add(path, f"at most {MAX_CONDITIONS} conditions per segment")
        return None
    return _parse_leaf(raw, path, resolve, errors)


def _parse_leaf(  # noqa: PLR0912 - one branch per check, each naming its path
    raw: dict[str, Any], path: str, resolve: Any, errors: _Errors
) -> Leaf | None:
    name = raw.get("field")
    if not isinstance(name, str) or not name:
        errors.add(f"{path}.field", "required: the field to test (or use and/or/not)")
        return None
    info = resolve(name)
    if isinstance(info, str):
        errors.add(f"{path}.field", info, "unknown_field")
        return None
    value_type = info.type
    if value_type == "any":  # custom attribute: typed by the condition
        value_type = raw.get("type") or _infer(raw.get("value"))
        if value_type is None and raw.get("op") in ("is_true", "is_false"):
            value_type = Type.BOOLEAN
        elif value_type is None and raw.get("op") in ("is_set", "is_not_set"):
            value_type = Type.STRING
        if value_type not in (Type.NUMBER, Type.STRING, Type.BOOLEAN, Type.DATETIME):
            errors.add(f"{path}.type", "give the attribute's type: number, string, boolean or datetime")
            return None
    allowed_keys = {"field", "op", "value", "type", *(p.name for p in info.params)}
    for key in raw:
        if key not in allowed_keys:
            errors.add(f"{path}.{key}", f"unknown key for field {name!r}")
    op = raw.get("op")
    ops = OPS[value_type]
    if op not in ops:
        errors.add(f"{path}.op", f"must be one of {', '.join(ops)} for {name!r}")
        return None
    params: dict[str, Any] = {}
    for param in info.params:
        value = raw.get(param.name)
        if value is None:
            if param.required:
                errors.add(f"{path}.{param.name}", f"required for {name!r}")
            continue
        if param.kind == "days" and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 36500):
            errors.add(f"{path}.{param.name}", "must be a whole number of days between 1 and 36500")
            continue
        if param.kind == "string" and (not isinstance(value, str) or not value):
            errors.add(f"{path}.{param.name}", "must be a non-empty string")
            continue
        params[param.name] = value
    value = _check_value(raw, path, op, value_type, errors)
    if value is _INVALID:
        return None
    return Leaf(path, name, op, value, params, value_type if info.type == "any" else None)


_INVALID = object()


def _infer(value: Any) -> str | None:
    sample = value[0] if isinstance(value, list) and value else value
    if isinstance(sample, bool):
        return Type.BOOLEAN
    if isinstance(sample, int | float):
        return Type.NUMBER
    if isinstance(sample, str):
        return Type.STRING
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _as_datetime(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        parsed = datetime.fromisoformat(v)
    except ValueError:
        try:
            day = date.fromisoformat(v)
        except ValueError:
            return None
        parsed = datetime(day.year, day.month, day.day)
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _check_value(  # noqa: PLR0911 - one return per operator family
    raw: dict[str, Any], path: str, op: str, value_type: str, errors: _Errors
) -> Any:
    vpath = f"{path}.value"
    if op in NO_VALUE_OPS:
        if raw.get("value") is not None:
            errors.add(vpath, f"{op!r} takes no value")
            return _INVALID
        return None
    if "value" not in raw or raw["value"] is None:
        errors.add(vpath, f"required for {op!r}")
        return _INVALID
    value = raw["value"]
    if op in ("within_last_days", "not_within_last_days"):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 36500:
            errors.add(vpath, "must be a whole number of days between 0 and 36500")
            return _INVALID
        return value
    if op in ("in", "not_in", "any_of", "all_of", "none_of", "between"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            errors.add(vpath, f"must be a non-empty list (at most {MAX_LIST} items)")
            return _INVALID
        if op == "between" and len(value) != 2:
            errors.add(vpath, "between takes [low, high]")
            return _INVALID
        items = []
        for i, item in enumerate(value):
            checked = _scalar(item, Type.STRING if value_type == Type.LIST else value_type, f"{vpath}[{i}]", errors)
            if checked is _INVALID:
                return _INVALID
            items.append(checked)
        if op == "between" and items[0] > items[1]:
            errors.add(vpath, "low must not exceed high")
            return _INVALID
        return items
    return _scalar(value, value_type, vpath, errors)


def _scalar(value: Any, value_type: str, path: str, errors: _Errors) -> Any:  # noqa: PLR0911
    if value_type == Type.NUMBER:
        if not _is_number(value):
            errors.add(path, "must be a number")
            return _INVALID
        return value
    if value_type == Type.STRING:
        if not isinstance(value, str | int) or isinstance(value, bool):
            errors.add(path, "must be a string")
            return _INVALID
        return str(value)
    if value_type == Type.DATETIME:
        parsed = _as_datetime(value)
        if parsed is None:
            errors.add(path, "must be an ISO 8601 date or date-time")
            return _INVALID
        return parsed
    errors.add(path, "takes no value")
    return _INVALID
