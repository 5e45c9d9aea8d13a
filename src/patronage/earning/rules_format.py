"""The JSON format of earning rules: parse and validate a rule-set document into immutable rules.

Pure. Every problem is a 422 naming the field by its path (``rules.2.effect.points``). The format is
documented in docs/earning-rules.md; a document looks like::

    {"stacking": "multiply",
     "rules": [{"key": "base", "trigger": "order", "effect": {"type": "per_currency", "points": 1}}]}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from patronage.kit.errors import ValidationFailed, field_error

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
TRIGGER = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,99}$")
BUILTIN_TRIGGERS = (
    "order", "signup", "birthday", "anniversary", "referral", "review_posted", "social_share", "survey_answered",
)
STACKING = ("multiply", "add", "max")
EFFECTS = ("per_currency", "per_item", "fixed", "multiplier")
PERIODS = ("day", "week", "month", "quarter", "year", "lifetime")
OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "contains_any", "contains_all",
       "exists", "between")
FIELD_ROOTS = ("order", "customer", "event", "time")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RULES = 200
MAX_DEPTH = 8


@dataclass(frozen=True)
class LineFilter:
    skus: frozenset[str] | None = None
    categories: frozenset[str] | None = None

    def matches(self, sku: str | None, category: str | None) -> bool:
        if self.skus is not None and sku in self.skus:
            return True
        return self.categories is not None and category in self.categories


@dataclass(frozen=True)
class Effect:
    type: str
    points: Decimal = Decimal(0)
    per: Decimal = Decimal(1)
    factor: Decimal = Decimal(1)
    rounding: str = "floor"
    scope: str = "order"  # rounding per order or per line
    lines: LineFilter | None = None
    multipliable: bool = True


@dataclass(frozen=True)
class Limit:
    period: str
    points: int | None = None
    times: int | None = None


@dataclass(frozen=True)
class Rule:
    key: str
    uid: str  # stable across versions: "<rule set id>:<key>", the key of limit counters
    name: str
    trigger: str
    priority: int
    exclusive: bool
    active_from: datetime | None
    active_until: datetime | None
    when: tuple[Any, ...] | None
    effect: Effect
    limits: tuple[Limit, ...]
    budget: int | None

    def active_at(self, at: datetime) -> bool:
        return (self.active_from is None or at >= self.active_from) and (
            self.active_until is None or at < self.active_until
        )


@dataclass(frozen=True)
class RuleSetDoc:
    stacking: str
    rules: tuple[Rule, ...]
    _ordered: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        ranked = sorted(enumerate(self.rules), key=lambda p: (-p[1].priority, p[0]))
        for _, rule in ranked:
            self._ordered.setdefault(rule.trigger, ())
            self._ordered[rule.trigger] += (rule,)

    def for_trigger(self, trigger: str) -> tuple[Rule, ...]:
        """The trigger's rules in evaluation order: highest priority first, then document order."""
        return self._ordered.get(trigger, ())

    def fields(self) -> set[str]:
        """Every field the conditions read (the service loads only the facts that are needed)."""
        out: set[str] = set()
        for rule in self.rules:
            _collect_fields(rule.when, out)
        return out


def _collect_fields(cond: tuple[Any, ...] | None, out: set[str]) -> None:
    if cond is None:
        return
    if cond[0] in ("all", "any"):
        for c in cond[1]:
            _collect_fields(c, out)
    elif cond[0] == "not":
        _collect_fields(cond[1], out)
    elif cond[0] == "cmp":
        out.add(cond[1])
    elif cond[0] == "bought":
        out.add("order.lines")
    elif cond[0] == "time":
        out.add("time")


def _decimal(value: Any, path: str, *, minimum: Decimal | None = Decimal(0)) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise field_error(path, "must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise field_error(path, "must be a number") from exc
    if not number.is_finite() or (minimum is not None and number < minimum):
        raise field_error(path, f"must be a number >= {minimum}")
    return number


def _int(value: Any, path: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise field_error(path, f"must be a whole number >= {minimum}")
    return value


def _choice(value: Any, path: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise field_error(path, f"must be one of {', '.join(options)}")
    return str(value)


def _obj(value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise field_error(path, "must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise field_error(f"{path}.{unknown[0]}" if path else unknown[0], "unknown field")
    return value


def _strings(value: Any, path: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise field_error(path, "must be a list of strings")
    return frozenset(value)


def _when(value: Any, path: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise field_error(path, "must be an ISO 8601 date-time with a time zone") from exc
    if parsed.tzinfo is None:
        raise field_error(path, "must include a time zone offset (e.g. Z or +01:00)")
    return parsed


def _line_filter(value: Any, path: str) -> LineFilter:
    raw = _obj(value, path, {"skus", "categories"})
    if not raw:
        raise field_error(path, "name skus or categories")
    return LineFilter(
        skus=_strings(raw["skus"], f"{path}.skus") if "skus" in raw else None,
        categories=_strings(raw["categories"], f"{path}.categories") if "categories" in raw else None,
    )


def _clock(value: Any, path: str) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-4]):[0-5]\d", value):
        raise field_error(path, "must be a time HH:MM")
    hours, minutes = (int(x) for x in value.split(":"))
    return time.max if hours == 24 else time(hours, minutes)


def parse_condition(value: Any, path: str, depth: int = 0) -> tuple[Any, ...]:
    if depth > MAX_DEPTH:
        raise field_error(path, f"conditions nest at most {MAX_DEPTH} levels")
    if not isinstance(value, dict) or len(value) == 0:
        raise field_error(path, "must be a condition object")
    for key, parser in _SPECIAL.items():
        if key in value:
            _obj(value, path, {key})
            return parser(value[key], f"{path}.{key}", depth)
    return _comparison(value, path)


def _group(op: str) -> Callable[[Any, str, int], tuple[Any, ...]]:
    def parse(items: Any, path: str, depth: int) -> tuple[Any, ...]:
        if not isinstance(items, list) or not items:
            raise field_error(path, "must be a non-empty list of conditions")
        return (op, tuple(parse_condition(c, f"{path}.{i}", depth + 1) for i, c in enumerate(items)))

    return parse


def _not(value: Any, path: str, depth: int) -> tuple[Any, ...]:
    return ("not", parse_condition(value, path, depth + 1))


def _bought(value: Any, path: str, _depth: int) -> tuple[Any, ...]:
    raw = _obj(value, path, {"skus", "categories", "min_quantity", "min_amount"})
    lines = _line_filter({k: raw[k] for k in ("skus", "categories") if k in raw}, path)
    return ("bought", lines, _int(raw.get("min_quantity", 1), f"{path}.min_quantity", minimum=1),
            _decimal(raw.get("min_amount", 0), f"{path}.min_amount"))


def _time_window(value: Any, path: str, _depth: int) -> tuple[Any, ...]:
    raw = _obj(value, path, {"days", "from", "to"})
    days = _strings(raw.get("days", list(DAYS)), f"{path}.days")
    if not days or days - set(DAYS):
        raise field_error(f"{path}.days", f"must be a non-empty list of {', '.join(DAYS)}")
    start = _clock(raw.get("from", "00:00"), f"{path}.from")
    end = _clock(raw.get("to", "24:00"), f"{path}.to")
    return ("time", frozenset(DAYS.index(d) for d in days), start, end)


def _first_order(value: Any, path: str, _depth: int) -> tuple[Any, ...]:
    if not isinstance(value, bool):
        raise field_error(path, "must be true or false")
    return ("cmp", "order.first", "eq", value)


_SPECIAL: dict[str, Callable[[Any, str, int], tuple[Any, ...]]] = {
    "all": _group("all"), "any": _group("any"), "not": _not, "bought": _bought, "time": _time_window,
    "first_order": _first_order,
}


def _comparison(value: dict[str, Any], path: str) -> tuple[Any, ...]:
    raw = _obj(value, path, {"field", "op", "value"})
    field = raw.get("field")
    if not isinstance(field, str) or field.split(".", 1)[0] not in FIELD_ROOTS or "." not in field:
        raise field_error(f"{path}.field", f"must be a field under {', '.join(FIELD_ROOTS)} (e.g. order.total)")
    op = _choice(raw.get("op", "eq"), f"{path}.op", OPS)
    operand = raw.get("value")
    if op in ("in", "not_in", "contains_any", "contains_all") and not isinstance(operand, list):
        raise field_error(f"{path}.value", f"{op} needs a list")
    if op == "between" and not (isinstance(operand, list) and len(operand) == 2):
        raise field_error(f"{path}.value", "between needs [low, high]")
    if op != "exists" and "value" not in raw:
        raise field_error(f"{path}.value", "missing")
    return ("cmp", field, op, operand)


def _effect(value: Any, path: str) -> Effect:
    raw = _obj(value, path, {"type", "points", "per", "factor", "rounding", "scope", "lines", "multipliable"})
    kind = _choice(raw.get("type"), f"{path}.type", EFFECTS)
    lines = _line_filter(raw["lines"], f"{path}.lines") if "lines" in raw else None
    rounding = _choice(raw.get("rounding", "floor"), f"{path}.rounding", ("floor", "half_up", "ceil"))
    scope = _choice(raw.get("scope", "order"), f"{path}.scope", ("order", "line"))
    multipliable = raw.get("multipliable", kind != "fixed")
    if not isinstance(multipliable, bool):
        raise field_error(f"{path}.multipliable", "must be true or false")
    if kind == "multiplier":
        return Effect(kind, factor=_decimal(raw.get("factor"), f"{path}.factor"), lines=lines)
    if "points" not in raw:
        raise field_error(f"{path}.points", "missing")
    if kind == "fixed":
        return Effect(kind, points=Decimal(_int(raw["points"], f"{path}.points")), multipliable=multipliable)
    per = _decimal(raw.get("per", 1), f"{path}.per")
    if per <= 0:
        raise field_error(f"{path}.per", "must be greater than 0")
    return Effect(kind, points=_decimal(raw["points"], f"{path}.points"), per=per, rounding=rounding,
                  scope=scope, lines=lines, multipliable=multipliable)


def _limits(value: Any, path: str) -> tuple[tuple[Limit, ...], int | None]:
    raw = _obj(value, path, {"per_customer", "budget"})
    limits = []
    per_customer = raw.get("per_customer", [])
    if isinstance(per_customer, dict):
        per_customer = [per_customer]
    if not isinstance(per_customer, list):
        raise field_error(f"{path}.per_customer", "must be a list of limits")
    for i, item in enumerate(per_customer):
        p = f"{path}.per_customer.{i}"
        raw_limit = _obj(item, p, {"points", "times", "period"})
        if "points" not in raw_limit and "times" not in raw_limit:
            raise field_error(p, "set points and/or times")
        limits.append(Limit(
            period=_choice(raw_limit.get("period", "lifetime"), f"{p}.period", PERIODS),
            points=_int(raw_limit["points"], f"{p}.points") if "points" in raw_limit else None,
            times=_int(raw_limit["times"], f"{p}.times", minimum=1) if "times" in raw_limit else None,
        ))
    budget = raw.get("budget")
    if isinstance(budget, dict):
        budget = _obj(budget, f"{path}.budget", {"points"}).get("points")
    return tuple(limits), None if budget is None else _int(budget, f"{path}.budget")


def _rule(value: Any, path: str, prefix: str) -> Rule:
    raw = _obj(value, path, {"key", "name", "description", "trigger", "priority", "exclusive", "active_from",
                             "active_until", "when", "effect", "limits"})
    key = raw.get("key")
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise field_error(f"{path}.key", "1-60 characters: lowercase letters, digits, '_' or '-'")
    trigger = raw.get("trigger", "order")
    if not isinstance(trigger, str) or not TRIGGER.fullmatch(trigger):
        raise field_error(f"{path}.trigger", f"an event type such as {', '.join(BUILTIN_TRIGGERS[:4])}")
    exclusive = raw.get("exclusive", False)
    if not isinstance(exclusive, bool):
        raise field_error(f"{path}.exclusive", "must be true or false")
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise field_error(f"{path}.priority", "must be a whole number")
    active_from = _when(raw.get("active_from"), f"{path}.active_from")
    active_until = _when(raw.get("active_until"), f"{path}.active_until")
    if active_from and active_until and active_until <= active_from:
        raise field_error(f"{path}.active_until", "must be after active_from")
    if "effect" not in raw:
        raise field_error(f"{path}.effect", "missing")
    limits, budget = _limits(raw.get("limits", {}), f"{path}.limits")
    name = raw.get("name", key)
    if not isinstance(name, str):
        raise field_error(f"{path}.name", "must be text")
    return Rule(
        key=key, uid=f"{prefix}:{key}", name=name[:200], trigger=trigger, priority=priority, exclusive=exclusive,
        active_from=active_from, active_until=active_until,
        when=parse_condition(raw["when"], f"{path}.when") if raw.get("when") is not None else None,
        effect=_effect(raw["effect"], f"{path}.effect"), limits=limits, budget=budget,
    )


def parse_document(document: Any, *, prefix: str = "draft") -> RuleSetDoc:
    """Validate a rule-set document; ``prefix`` (the rule set's id) makes rule uids stable."""
    raw = _obj(document, "", {"stacking", "rules"})
    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        raise field_error("rules", "must be a list of rules")
    if len(rules) > MAX_RULES:
        raise field_error("rules", f"at most {MAX_RULES} rules per set")
    parsed = tuple(_rule(r, f"rules.{i}", prefix) for i, r in enumerate(rules))
    seen: set[str] = set()
    for i, rule in enumerate(parsed):
        if rule.key in seen:
            raise field_error(f"rules.{i}.key", f"duplicate key {rule.key!r}")
        seen.add(rule.key)
    return RuleSetDoc(stacking=_choice(raw.get("stacking", "multiply"), "stacking", STACKING), rules=parsed)


def merge(*docs: RuleSetDoc) -> RuleSetDoc:
    """Several published rule sets evaluated together (the first one's stacking policy wins)."""
    if not docs:
        return RuleSetDoc("multiply", ())
    return RuleSetDoc(docs[0].stacking, tuple(r for d in docs for r in d.rules))


__all__ = ["Effect", "Limit", "LineFilter", "Rule", "RuleSetDoc", "ValidationFailed", "merge", "parse_document"]
