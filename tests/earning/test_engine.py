"""The earning engine, pure: no database. Conditions, effects, stacking, rounding, limits, priority,
exclusivity, active windows, net paid amounts and their proration."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from patronage.earning.amounts import ORDER_KEY, Line, allocate, net_paid
from patronage.earning.engine import Evaluation, evaluate, period_key
from patronage.earning.facts import Context, CustomerFacts, Occurrence, OrderFacts
from patronage.earning.rules_format import parse_document
from patronage.kit.errors import ValidationFailed

D = Decimal
SAT_NOON = datetime(2024, 3, 2, 12, tzinfo=UTC)  # a Saturday
TUE_NOON = datetime(2024, 3, 5, 12, tzinfo=UTC)
ALICE = CustomerFacts(1, tier="gold", segments=frozenset({"vip"}), tags=frozenset({"newsletter"}),
                      attributes={"pet": "dog", "score": 7}, orders_count=3, country="PT")


def order(*lines: Line, discount: str = "0", first: bool = False, channel: str = "web", store: str | None = None,
          subtotal: str | None = None) -> OrderFacts:
    net = sum((line.net for line in lines), D(0))
    sub = D(subtotal) if subtotal is not None else net
    return OrderFacts(id="o1", total=sub - D(discount), subtotal=sub, lines=tuple(lines), discount_total=D(discount),
                      first=first, channel=channel, store=store)


def line(key: str, price: str, qty: int = 1, *, sku: str | None = None, category: str | None = None,
         discount: str = "0", reward: bool = False) -> Line:
    return Line(key, sku or f"sku-{key}", category, qty, D(price), D(discount), reward)


def run(rules: list[dict[str, Any]], occ: Occurrence, *, customer: CustomerFacts = ALICE, stacking: str = "multiply",
        **ctx: Any) -> Evaluation:
    doc = parse_document({"stacking": stacking, "rules": rules}, prefix="1")
    return evaluate(doc, occ, customer, Context(**ctx))


def on_order(o: OrderFacts, at: datetime = TUE_NOON) -> Occurrence:
    return Occurrence("order", at, o)


BASE = {"key": "base", "effect": {"type": "per_currency", "points": 1}}


# ---- net paid amounts --------------------------------------------------------------------------------
def test_discount_and_reward_lines_never_earn_and_order_discounts_are_prorated() -> None:
    lines = [line("0", "60"), line("1", "40"), line("2", "-10", reward=True), line("3", "5", reward=True)]
    net = net_paid(lines, D("10"), D("95"))
    assert net == {"0": D("48"), "1": D("32")}  # 20 of discounts split 60:40


def test_lineless_orders_earn_on_subtotal_less_discounts() -> None:
    assert net_paid([], D("5"), D("30")) == {ORDER_KEY: D("25")}
    assert net_paid([], D("50"), D("30")) == {ORDER_KEY: D("0")}


def test_discounts_larger_than_the_order_leave_nothing_to_earn() -> None:
    assert net_paid([line("0", "10")], D("15"), D("10")) == {"0": D("0")}


def test_allocate_adds_up_exactly_with_largest_remainders() -> None:
    assert allocate(10, {"a": D(1), "b": D(1), "c": D(1)}) == {"a": 4, "b": 3, "c": 3}
    assert allocate(0, {"a": D(1)}) == {"a": 0}
    assert sum(allocate(7, {"a": D("0.3"), "b": D("0.3"), "c": D("0.4")}).values()) == 7


# ---- effects and rounding ----------------------------------------------------------------------------
@pytest.mark.parametrize(("rounding", "expected"), [("floor", 19), ("half_up", 20), ("ceil", 20)])
def test_rounding_per_order(rounding: str, expected: int) -> None:
    o = order(line("0", "9.70"), line("1", "9.80"))
    ev = run([{"key": "r", "effect": {"type": "per_currency", "points": 1, "rounding": rounding}}], on_order(o))
    assert ev.points == expected


def test_rounding_per_line_floors_each_line() -> None:
    o = order(line("0", "9.70"), line("1", "9.80"))
    ev = run([{"key": "r", "effect": {"type": "per_currency", "points": 1, "scope": "line"}}], on_order(o))
    assert ev.points == 18 and ev.lines == {"0": 9, "1": 9}


def test_points_per_currency_unit_with_a_step() -> None:
    o = order(line("0", "25"))
    ev = run([{"key": "r", "effect": {"type": "per_currency", "points": 5, "per": 10}}], on_order(o))
    assert ev.points == 12  # 25 / 10 * 5 = 12.5, floored


def test_per_item_points_for_matching_lines() -> None:
    o = order(line("0", "10", 3, category="shoes"), line("1", "5", 2, category="socks"))
    ev = run([{"key": "r", "effect": {"type": "per_item", "points": 10, "lines": {"categories": ["shoes"]}}}],
             on_order(o))
    assert ev.points == 30 and ev.lines == {"0": 30}


def test_line_filtered_points_skip_other_lines() -> None:
    o = order(line("0", "50", sku="A"), line("1", "50", sku="B"))
    ev = run([{"key": "r", "effect": {"type": "per_currency", "points": 2, "lines": {"skus": ["B"]}}}], on_order(o))
    assert ev.lines == {"1": 100}


def test_fixed_points_are_attributed_to_lines_by_net_amount() -> None:
    o = order(line("0", "75"), line("1", "25"))
    ev = run([{"key": "bonus", "effect": {"type": "fixed", "points": 10}}], on_order(o))
    assert ev.lines == {"0": 8, "1": 2}  # 7.5 and 2.5: the tie goes to the first line


def test_fixed_points_for_a_non_order_trigger() -> None:
    ev = run([{"key": "welcome", "trigger": "signup", "effect": {"type": "fixed", "points": 100}}],
             Occurrence("signup", TUE_NOON))
    assert ev.points == 100 and ev.lines == {ORDER_KEY: 100}


def test_rules_of_other_triggers_are_not_evaluated() -> None:
    ev = run([BASE, {"key": "review", "trigger": "review_posted", "effect": {"type": "fixed", "points": 5}}],
             on_order(order(line("0", "10"))))
    assert [r.key for r in ev.rules] == ["base"]


# ---- multipliers and stacking ------------------------------------------------------------------------
MULTIPLIERS = [
    BASE,
    {"key": "x2", "when": {"time": {"days": ["sat", "sun"]}}, "effect": {"type": "multiplier", "factor": 2}},
    {"key": "x3", "when": {"field": "customer.tier", "op": "eq", "value": "gold"},
     "effect": {"type": "multiplier", "factor": 3}},
]


@pytest.mark.parametrize(("stacking", "expected"), [("multiply", 600), ("add", 400), ("max", 300)])
def test_stacking_policies(stacking: str, expected: int) -> None:
    ev = run(MULTIPLIERS, on_order(order(line("0", "100")), SAT_NOON), stacking=stacking)
    assert ev.points == expected


def test_the_tier_multiplier_stacks_like_any_other() -> None:
    ev = run([BASE], on_order(order(line("0", "100"))), tier_multiplier=D("1.5"))
    assert ev.points == 150


def test_fixed_points_ignore_multipliers_unless_multipliable() -> None:
    rules = [{"key": "f", "effect": {"type": "fixed", "points": 10}},
             {"key": "g", "effect": {"type": "fixed", "points": 10, "multipliable": True}},
             {"key": "x2", "effect": {"type": "multiplier", "factor": 2}}]
    ev = run(rules, on_order(order(line("0", "1"))))
    assert ev.points == 30


def test_a_line_filtered_multiplier_only_boosts_its_lines() -> None:
    rules = [BASE, {"key": "shoes", "effect": {"type": "multiplier", "factor": 3, "lines": {"categories": ["shoes"]}}}]
    ev = run(rules, on_order(order(line("0", "10", category="shoes"), line("1", "10", category="hats"))))
    assert ev.lines == {"0": 30, "1": 10}


# ---- priority, exclusivity, active windows -----------------------------------------------------------
def test_an_exclusive_rule_stops_lower_priority_rules() -> None:
    rules = [BASE, {"key": "vip", "priority": 10, "exclusive": True,
                    "when": {"field": "customer.segments", "op": "contains", "value": "vip"},
                    "effect": {"type": "per_currency", "points": 5}}]
    ev = run(rules, on_order(order(line("0", "10"))))
    assert ev.points == 50
    assert ev.rules[1].reason.startswith("skipped: exclusive rule 'vip'")


def test_an_exclusive_rule_that_does_not_match_stops_nothing() -> None:
    rules = [BASE, {"key": "vip", "priority": 10, "exclusive": True,
                    "when": {"field": "customer.tier", "op": "eq", "value": "platinum"},
                    "effect": {"type": "per_currency", "points": 5}}]
    ev = run(rules, on_order(order(line("0", "10"))))
    assert ev.points == 10 and "fails eq" in ev.rules[0].reason


def test_active_window() -> None:
    rule = {"key": "promo", "active_from": "2024-03-04T00:00:00Z", "active_until": "2024-03-06T00:00:00+00:00",
            "effect": {"type": "fixed", "points": 7}}
    assert run([rule], on_order(order(line("0", "1")), TUE_NOON)).points == 7
    ev = run([rule], on_order(order(line("0", "1")), SAT_NOON))
    assert ev.points == 0 and ev.rules[0].reason == "not active at this time"


# ---- conditions --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("condition", "matched"),
    [
        ({"field": "order.total", "op": "gte", "value": 50}, True),
        ({"field": "order.total", "op": "lt", "value": "50"}, False),
        ({"field": "order.channel", "op": "in", "value": ["web", "app"]}, True),
        ({"field": "order.store", "op": "exists"}, False),
        ({"field": "order.skus", "op": "contains", "value": "sku-0"}, True),
        ({"field": "order.categories", "op": "contains_all", "value": ["shoes", "hats"]}, False),
        ({"field": "order.categories", "op": "contains_any", "value": ["shoes", "hats"]}, True),
        ({"field": "order.net", "op": "between", "value": [50, 60]}, True),
        ({"field": "order.item_count", "op": "eq", "value": 2}, True),
        ({"first_order": True}, False),
        ({"field": "customer.attributes.pet", "op": "eq", "value": "dog"}, True),
        ({"field": "customer.attributes.score", "op": "gt", "value": 5}, True),
        ({"field": "customer.attributes.missing", "op": "eq", "value": 1}, False),
        ({"field": "customer.attributes.missing", "op": "ne", "value": 1}, True),
        ({"field": "customer.tags", "op": "contains", "value": "newsletter"}, True),
        ({"field": "customer.country", "op": "not_in", "value": ["ES", "FR"]}, True),
        ({"field": "customer.orders_count", "op": "lte", "value": 2}, False),
        ({"field": "time.weekday", "op": "in", "value": ["tue", "wed"]}, True),
        ({"field": "time.hour", "op": "gte", "value": 12}, True),
        ({"all": [{"field": "order.total", "op": "gt", "value": 0}, {"not": {"first_order": True}}]}, True),
        ({"any": [{"first_order": True}, {"field": "customer.tier", "op": "eq", "value": "silver"}]}, False),
        ({"bought": {"categories": ["shoes"], "min_quantity": 1, "min_amount": 40}}, True),
        ({"bought": {"skus": ["nope"]}}, False),
    ],
)
def test_conditions(condition: dict[str, Any], matched: bool) -> None:
    o = order(line("0", "55", category="shoes"), line("1", "0.5", category="socks"))
    ev = run([{"key": "r", "when": condition, "effect": {"type": "fixed", "points": 1}}], on_order(o))
    assert ev.rules[0].matched is matched, ev.rules[0].reason


def test_time_windows_are_local_and_may_wrap_midnight() -> None:
    rule = {"key": "late", "when": {"time": {"days": ["fri"], "from": "22:00", "to": "02:00"}},
            "effect": {"type": "fixed", "points": 1}}
    # Saturday 00:30 in Lisbon (UTC+0 in March before the change) belongs to Friday's window.
    at = datetime(2024, 3, 2, 0, 30, tzinfo=UTC)
    assert run([rule], on_order(order(line("0", "1")), at), timezone="Europe/Lisbon").points == 1
    # 23:30 UTC on Friday is already Saturday 00:30 in Warsaw (UTC+1): still inside.
    at = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
    assert run([rule], on_order(order(line("0", "1")), at), timezone="Europe/Warsaw").points == 1
    # Friday 21:00 in New York is Saturday 02:00 UTC: the local time (21:00) is outside.
    at = datetime(2024, 3, 2, 2, 0, tzinfo=UTC)
    assert run([rule], on_order(order(line("0", "1")), at), timezone="America/New_York").points == 0


def test_event_properties_are_conditions_too() -> None:
    rule = {"key": "good-review", "trigger": "review_posted",
            "when": {"field": "event.rating", "op": "gte", "value": 4}, "effect": {"type": "fixed", "points": 20}}
    assert run([rule], Occurrence("review_posted", TUE_NOON, properties={"rating": 5})).points == 20
    assert run([rule], Occurrence("review_posted", TUE_NOON, properties={"rating": 2})).points == 0


def test_order_fields_do_not_match_a_non_order_trigger() -> None:
    rule = {"key": "r", "trigger": "signup", "when": {"field": "order.total", "op": "gt", "value": 0},
            "effect": {"type": "fixed", "points": 1}}
    assert run([rule], Occurrence("signup", TUE_NOON)).points == 0


# ---- limits ------------------------------------------------------------------------------------------
def test_per_customer_points_limit_caps_and_reports() -> None:
    rule = {**BASE, "limits": {"per_customer": [{"points": 100, "period": "month"}]}}
    ev = run([rule], on_order(order(line("0", "80"))), usage={("1:base", "2024-03"): (50, 1)})
    assert ev.points == 50 and "100 points per month" in (ev.rules[0].capped_by or "")
    assert [(u.period_key, u.points) for u in ev.usage] == [("2024-03", 50)]


def test_times_limit() -> None:
    rule = {"key": "bday", "trigger": "birthday", "effect": {"type": "fixed", "points": 100},
            "limits": {"per_customer": {"times": 1, "period": "year"}}}
    occ = Occurrence("birthday", TUE_NOON)
    assert run([rule], occ).points == 100
    assert run([rule], occ, usage={("1:bday", "2024"): (100, 1)}).points == 0


def test_total_budget() -> None:
    rule = {**BASE, "limits": {"budget": 1000}}
    ev = run([rule], on_order(order(line("0", "80"))), budget_used={"1:base": 990})
    assert ev.points == 10 and ev.usage[-1].period_key == "budget"


def test_period_keys_are_local() -> None:
    at = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)
    assert period_key("year", at, "UTC") == "2024"
    assert period_key("year", at, "Europe/Warsaw") == "2025"
    assert period_key("week", at, "UTC") == "2025-W01"
    assert period_key("quarter", at, "UTC") == "2024-Q4"
    assert period_key("day", at, "America/New_York") == "2024-12-31"


# ---- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"rules": [{"key": "Bad Key", "effect": {"type": "fixed", "points": 1}}]}, "rules.0.key"),
        ({"rules": [{"key": "a", "effect": {"type": "bogus"}}]}, "rules.0.effect.type"),
        ({"rules": [{"key": "a", "effect": {"type": "fixed", "points": -1}}]}, "rules.0.effect.points"),
        ({"rules": [{"key": "a", "effect": {"type": "per_currency", "points": 1, "per": 0}}]}, "rules.0.effect.per"),
        ({"rules": [{"key": "a", "when": {"field": "bogus.x", "op": "eq", "value": 1},
                     "effect": {"type": "fixed", "points": 1}}]}, "rules.0.when.field"),
        ({"rules": [{"key": "a", "when": {"all": []}, "effect": {"type": "fixed", "points": 1}}]}, "rules.0.when.all"),
        ({"rules": [{"key": "a", "effect": {"type": "fixed", "points": 1}},
                    {"key": "a", "effect": {"type": "fixed", "points": 1}}]}, "rules.1.key"),
        ({"stacking": "sum", "rules": []}, "stacking"),
        ({"rules": [{"key": "a", "active_from": "2024-01-01", "effect": {"type": "fixed", "points": 1}}]},
         "rules.0.active_from"),
        ({"rules": [{"key": "a", "effect": {"type": "fixed", "points": 1}, "limits": {"per_customer": [{}]}}]},
         "rules.0.limits.per_customer.0"),
        ({"rules": [{"key": "a", "colour": "red", "effect": {"type": "fixed", "points": 1}}]}, "rules.0.colour"),
    ],
)
def test_invalid_documents_name_the_field(document: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_document(document)
    assert info.value.extra["errors"][0]["field"] == field
