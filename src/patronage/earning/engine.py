"""The earning engine: which rules match an occurrence and how many points each gives. Pure — no
database, no clock; the same function serves the live path, previews, backtests and bulk replays.

Evaluation order (docs/earning-rules.md):
1. The rules of the occurrence's trigger, highest ``priority`` first (ties: document order).
2. Each rule: active window, then conditions. A matched ``exclusive`` rule stops lower-priority rules.
3. Multiplier rules and the tier multiplier combine per line by the set's stacking policy
   (multiply | add | max) and apply to every ``multipliable`` points rule.
4. Points rules compute raw points from net paid amounts (per line), apply the multiplier, round
   (floor | half_up | ceil, per line or per order) and are capped by their limits, in priority order.
5. Every point is attributed to a line (fixed points by net amount), so a return can reverse exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from patronage.earning import conditions
from patronage.earning.amounts import ORDER_KEY, Line, allocate, round_points
from patronage.earning.facts import Context, CustomerFacts, Occurrence
from patronage.earning.rules_format import Rule, RuleSetDoc

ONE = Decimal(1)


@dataclass(slots=True)
class RuleOutcome:
    key: str
    name: str
    priority: int
    matched: bool
    reason: str
    points: int = 0
    raw_points: str = "0"  # before rounding and limits, after multipliers
    multiplier: str = "1"
    capped_by: str | None = None
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UsageIncrement:
    rule_uid: str
    period_key: str  # "budget" for a rule's total budget
    points: int
    times: int


@dataclass
class Evaluation:
    trigger: str
    points: int
    lines: dict[str, int]  # points per order line key (ORDER_KEY for an order without lines)
    net: dict[str, str]  # the net paid amount per line the points were computed from
    rules: list[RuleOutcome]
    usage: list[UsageIncrement]

    @property
    def matched(self) -> list[RuleOutcome]:
        return [r for r in self.rules if r.matched]


def period_key(period: str, at: datetime, timezone: str) -> str:
    """The limit period containing ``at`` in the workspace's time zone."""
    local = at.astimezone(ZoneInfo(timezone))
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{local.year}-{local.month:02d}"
    if period == "quarter":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    if period == "year":
        return str(local.year)
    return "lifetime"


def combine(factors: Iterable[Decimal], stacking: str) -> Decimal:
    values = list(factors)
    if not values:
        return ONE
    if stacking == "add":
        return ONE + sum((f - ONE for f in values), Decimal(0))
    if stacking == "max":
        return max(values)
    product = ONE
    for f in values:
        product *= f
    return product


def evaluate(doc: RuleSetDoc, occurrence: Occurrence, customer: CustomerFacts, context: Context, *,
             explain: bool = True) -> Evaluation:
    """``explain=False`` leaves the reasons empty (bulk replays and backtests)."""
    order = occurrence.order
    net = order.net_lines() if order is not None else {}
    line_info = {line.key: line for line in order.lines} if order is not None else {}
    facts = conditions.Facts(occurrence, customer, context.timezone)
    outcomes: list[RuleOutcome] = []
    earning: list[tuple[Rule, RuleOutcome]] = []
    multipliers: list[Rule] = []
    stopped_by: str | None = None
    for rule in doc.for_trigger(occurrence.trigger):
        outcome = RuleOutcome(rule.key, rule.name, rule.priority, False, "")
        outcomes.append(outcome)
        if stopped_by is not None:
            outcome.reason = f"skipped: exclusive rule {stopped_by!r} matched first"
            continue
        if not rule.active_at(occurrence.at):
            outcome.reason = "not active at this time"
            continue
        ok, why = conditions.evaluate(rule.when, facts, explain)
        outcome.matched, outcome.reason = ok, why
        if not ok:
            continue
        if rule.effect.type == "multiplier":
            multipliers.append(rule)
            outcome.multiplier = str(rule.effect.factor)
        else:
            earning.append((rule, outcome))
        if rule.exclusive:
            stopped_by = rule.key

    def factor_for(line_key: str | None) -> Decimal:
        factors = [context.tier_multiplier]
        for m in multipliers:
            lf = m.effect.lines
            if lf is None:
                factors.append(m.effect.factor)
            elif line_key is not None and line_key in line_info:
                line = line_info[line_key]
                if lf.matches(line.sku, line.category):
                    factors.append(m.effect.factor)
        return combine(factors, doc.stacking)

    usage: list[UsageIncrement] = []
    totals: dict[str, int] = {}
    for rule, outcome in earning:
        lines = _points(rule, net, line_info, factor_for, outcome)
        lines = _apply_limits(rule, lines, occurrence, context, outcome=outcome, usage=usage)
        outcome.lines = {k: v for k, v in lines.items() if v}
        outcome.points = sum(lines.values())
        for k, v in outcome.lines.items():
            totals[k] = totals.get(k, 0) + v
    return Evaluation(
        trigger=occurrence.trigger, points=sum(totals.values()), lines=totals,
        net={k: str(v) for k, v in net.items()}, rules=outcomes, usage=usage,
    )


def _points(rule: Rule, net: Mapping[str, Decimal], line_info: Mapping[str, Line],
            factor: Callable[[str | None], Decimal], outcome: RuleOutcome) -> dict[str, int]:
    effect = rule.effect
    if effect.type == "fixed":
        f = factor(None) if effect.multipliable else ONE
        raw = effect.points * f
        outcome.raw_points, outcome.multiplier = str(raw), str(f)
        total = max(round_points(raw, effect.rounding), 0)
        weights = {k: v for k, v in net.items() if v > 0}
        if not weights:
            return {ORDER_KEY: total} if total else {}
        return allocate(total, weights)
    raw_lines: dict[str, Decimal] = {}
    for key, amount in net.items():
        line = line_info.get(key)
        if effect.lines is not None and (line is None or not effect.lines.matches(line.sku, line.category)):
            continue
        if effect.type == "per_item":
            if line is None:
                continue
            base = line.quantity * effect.points
        else:
            base = amount * effect.points / effect.per
        raw_lines[key] = base * (factor(key) if effect.multipliable else ONE)
    raw = sum(raw_lines.values(), Decimal(0))
    outcome.raw_points = str(raw)
    if effect.multipliable and raw_lines:
        outcome.multiplier = str(factor(next(iter(raw_lines))))
    if effect.scope == "line":
        return {k: max(round_points(v, effect.rounding), 0) for k, v in raw_lines.items()}
    return allocate(max(round_points(raw, effect.rounding), 0), raw_lines)


def _apply_limits(rule: Rule, lines: dict[str, int], occurrence: Occurrence, context: Context, *,
                  outcome: RuleOutcome, usage: list[UsageIncrement]) -> dict[str, int]:
    points = sum(lines.values())
    if points <= 0 or (not rule.limits and rule.budget is None):
        return lines
    allowed = points
    keys = []
    for limit in rule.limits:
        key = period_key(limit.period, occurrence.at, context.timezone)
        keys.append(key)
        used_points, used_times = context.usage.get((rule.uid, key), (0, 0))
        if limit.times is not None and used_times >= limit.times:
            allowed, outcome.capped_by = 0, f"{limit.times} time(s) per {limit.period} already used"
        if limit.points is not None and allowed > limit.points - used_points:
            allowed = max(limit.points - used_points, 0)
            outcome.capped_by = f"{limit.points} points per {limit.period} (used {used_points})"
    if rule.budget is not None:
        left = max(rule.budget - context.budget_used.get(rule.uid, 0), 0)
        if allowed > left:
            allowed, outcome.capped_by = left, f"budget of {rule.budget} points (left {left})"
    if allowed < points:
        lines = allocate(allowed, {k: Decimal(v) for k, v in lines.items()}) if allowed else {k: 0 for k in lines}
    if allowed > 0:
        usage.extend(UsageIncrement(rule.uid, key, allowed, 1) for key in dict.fromkeys(keys))
        if rule.budget is not None:
            usage.append(UsageIncrement(rule.uid, "budget", allowed, 1))
    return lines
