"""Evaluating rule conditions against facts, pure, with a reason a person can read either way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from patronage.earning.facts import CustomerFacts, Occurrence, OrderFacts
from patronage.earning.rules_format import DAYS

MISSING = object()


class Facts:
    """Resolves ``order.total``, ``customer.tier``, ``event.rating``, ``time.weekday``... lazily."""

    def __init__(self, occurrence: Occurrence, customer: CustomerFacts, timezone: str) -> None:
        self.occurrence = occurrence
        self.customer = customer
        self.timezone = timezone
        self._local: datetime | None = None
        self._cache: dict[str, Any] = {}

    @property
    def local(self) -> datetime:
        if self._local is None:
            self._local = self.occurrence.at.astimezone(ZoneInfo(self.timezone))
        return self._local

    def get(self, field: str) -> Any:
        if field not in self._cache:
            self._cache[field] = self._resolve(field)
        return self._cache[field]

    def _resolve(self, field: str) -> Any:
        root, _, rest = field.partition(".")
        if root == "order":
            return self._order(rest)
        if root == "customer":
            return self._customer(rest)
        if root == "event":
            if rest == "type":
                return self.occurrence.trigger
            return _path(self.occurrence.properties, rest.removeprefix("properties."))
        return self._time(rest)

    def _order(self, name: str) -> Any:
        order = self.occurrence.order
        if order is None:
            return MISSING
        if name.startswith("attributes."):
            return _path(order.attributes, name.removeprefix("attributes."))
        getter = _ORDER_FIELDS.get(name)
        return MISSING if getter is None else getter(order)

    def _customer(self, name: str) -> Any:
        c = self.customer
        if name.startswith("attributes."):
            return _path(c.attributes, name.removeprefix("attributes."))
        if name == "days_since_signup":
            return None if c.signed_up_at is None else (self.occurrence.at - c.signed_up_at).days
        values = {"id": c.id, "tier": c.tier, "segments": sorted(c.segments), "tags": sorted(c.tags),
                  "orders_count": c.orders_count, "country": c.country}
        return values.get(name, MISSING)

    def _time(self, name: str) -> Any:
        local = self.local
        values = {"weekday": DAYS[local.weekday()], "hour": local.hour, "month": local.month, "day": local.day,
                  "date": local.date().isoformat(), "time": local.strftime("%H:%M"), "year": local.year}
        return values.get(name, MISSING)


_ORDER_FIELDS: dict[str, Callable[[OrderFacts], Any]] = {
    "total": lambda o: o.total,
    "subtotal": lambda o: o.subtotal,
    "discount_total": lambda o: o.discount_total,
    "currency": lambda o: o.currency,
    "channel": lambda o: o.channel,
    "store": lambda o: o.store,
    "first": lambda o: o.first,
    "id": lambda o: o.id,
    "net": lambda o: sum(o.net_lines().values(), Decimal(0)),
    "item_count": lambda o: sum(line.quantity for line in o.lines if not line.is_reward),
    "line_count": lambda o: sum(1 for line in o.lines if not line.is_reward),
    "skus": lambda o: [line.sku for line in o.lines if line.sku and not line.is_reward],
    "categories": lambda o: sorted({line.category for line in o.lines if line.category and not line.is_reward}),
}


def _path(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, Decimal | int | float) or (isinstance(value, str) and value.strip()):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _equal(a: Any, b: Any) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None and not isinstance(a, str) and not isinstance(b, str):
        return na == nb
    return bool(a == b)


def _contains(actual: Any, op: str, expected: Any) -> bool:
    items = actual if isinstance(actual, list | tuple | set | frozenset) else None
    if items is None:
        return isinstance(actual, str) and op == "contains" and str(expected) in actual
    wanted = [expected] if op == "contains" else list(expected)
    hits = [any(_equal(i, w) for i in items) for w in wanted]
    return all(hits) if op != "contains_any" else any(hits)


def _between(actual: Any, expected: Any) -> bool:
    low, high, value = _number(expected[0]), _number(expected[1]), _number(actual)
    return low is not None and high is not None and value is not None and low <= value <= high


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda a, e: not _equal(a, e),
    "in": lambda a, e: any(_equal(a, x) for x in e),
    "not_in": lambda a, e: not any(_equal(a, x) for x in e),
    "contains": lambda a, e: _contains(a, "contains", e),
    "contains_any": lambda a, e: _contains(a, "contains_any", e),
    "contains_all": lambda a, e: _contains(a, "contains_all", e),
    "between": _between,
}


def compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        present = actual is not MISSING and actual is not None
        return present if expected is None or expected is True else not present
    if actual is MISSING:
        return op in ("ne", "not_in")
    special = _OPS.get(op)
    if special is not None:
        return special(actual, expected)
    return _order_compare(actual, op, expected)


def _order_compare(actual: Any, op: str, expected: Any) -> bool:
    a, b = _number(actual), _number(expected)
    if a is None or b is None:
        if isinstance(actual, str) and isinstance(expected, str):  # dates, HH:MM times compare as text
            a, b = actual, expected  # type: ignore[assignment]
        else:
            return False
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]  # type: ignore[operator]


def _show(value: Any) -> str:
    if value is MISSING or value is None:
        return "missing"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return repr(value) if isinstance(value, str) else str(value)


def in_window(local: datetime, days: frozenset[int], start: time, end: time) -> bool:
    """Local weekday and time inside [start, end); a window with end <= start wraps past midnight and
    belongs to the day it starts on."""
    now = local.time().replace(tzinfo=None)
    if start < end:
        return local.weekday() in days and start <= now < end
    if now >= start:
        return local.weekday() in days
    return now < end and (local.weekday() - 1) % 7 in days


def evaluate(cond: tuple[Any, ...] | None, facts: Facts, explain: bool = True) -> tuple[bool, str]:
    """(matched, why) for a compiled condition (see rules_format.parse_condition). ``explain=False``
    skips writing the reasons (bulk evaluation)."""
    if cond is None:
        return True, "no conditions" if explain else ""
    if not explain:
        return matches(cond, facts), ""
    if cond[0] in ("all", "any", "not"):
        return _explain_group(cond, facts)
    if cond[0] == "bought":
        return _bought(cond, facts)
    if cond[0] == "time":
        _, days, start, end = cond
        ok = in_window(facts.local, days, start, end)
        when = f"{DAYS[facts.local.weekday()]} {facts.local.strftime('%H:%M')} local"
        return ok, f"{when} {'inside' if ok else 'outside'} the time window"
    _, field, op, expected = cond
    actual = facts.get(field)
    ok = compare(actual, op, expected)
    return ok, f"{field} = {_show(actual)} ({'meets' if ok else 'fails'} {op} {_show(expected)})"


def _explain_group(cond: tuple[Any, ...], facts: Facts) -> tuple[bool, str]:
    kind = cond[0]
    if kind == "all":
        for child in cond[1]:
            ok, why = evaluate(child, facts)
            if not ok:
                return False, why
        return True, " and ".join(evaluate(c, facts)[1] for c in cond[1])
    if kind == "any":
        reasons = []
        for child in cond[1]:
            ok, why = evaluate(child, facts)
            if ok:
                return True, why
            reasons.append(why)
        return False, "none of: " + "; ".join(reasons)
    ok, why = evaluate(cond[1], facts)
    return (not ok), f"not ({why})"


def matches(cond: tuple[Any, ...], facts: Facts) -> bool:
    """The verdict alone, without reasons."""
    kind = cond[0]
    if kind == "cmp":
        return compare(facts.get(cond[1]), cond[2], cond[3])
    if kind == "all":
        return all(matches(c, facts) for c in cond[1])
    if kind == "any":
        return any(matches(c, facts) for c in cond[1])
    if kind == "not":
        return not matches(cond[1], facts)
    if kind == "time":
        return in_window(facts.local, cond[1], cond[2], cond[3])
    return _bought(cond, facts)[0]


def _bought(cond: tuple[Any, ...], facts: Facts) -> tuple[bool, str]:
    _, lines, min_quantity, min_amount = cond
    order = facts.occurrence.order
    if order is None:
        return False, "not an order"
    net = order.net_lines()
    matching = [line for line in order.lines if not line.is_reward and lines.matches(line.sku, line.category)]
    quantity = sum(line.quantity for line in matching)
    amount = sum((net.get(line.key, Decimal(0)) for line in matching), Decimal(0))
    ok = quantity >= min_quantity and amount >= min_amount
    return ok, f"bought {quantity} matching item(s) for {_show(amount)} (needs {min_quantity}+, {_show(min_amount)}+)"
