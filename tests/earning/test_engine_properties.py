"""Hypothesis properties of the pure engine: points are never negative, reward and discount lines never
earn, proration and allocation add up exactly, and returning every unit reverses exactly what was earned."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from patronage.earning.amounts import Line, allocate, net_paid
from patronage.earning.engine import evaluate
from patronage.earning.facts import Context, CustomerFacts, Occurrence, OrderFacts
from patronage.earning.returns import points_to_reverse
from patronage.earning.rules_format import parse_document

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)


@st.composite
def lines(draw: st.DrawFn) -> list[Line]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        reward = draw(st.booleans()) and i > 0
        quantity = draw(st.integers(1, 5))
        price = draw(money)
        if reward and draw(st.booleans()):
            price = -price  # a voucher line
        discount = draw(st.decimals(min_value=0, max_value=abs(price) * quantity, places=2))
        out.append(Line(str(i), f"S{i}", draw(st.sampled_from(["a", "b", None])), quantity, price, discount, reward))
    return out


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"key": "base", "effect": {
        "type": "per_currency", "points": draw(st.integers(1, 10)), "per": draw(st.sampled_from([1, 2, 10])),
        "rounding": draw(st.sampled_from(["floor", "half_up", "ceil"])),
        "scope": draw(st.sampled_from(["order", "line"])),
    }}]
    if draw(st.booleans()):
        rules.append({"key": "bonus", "effect": {"type": "fixed", "points": draw(st.integers(0, 50))}})
    if draw(st.booleans()):
        rules.append({"key": "cat-a", "effect": {"type": "multiplier", "factor": draw(st.sampled_from([0, 1.5, 2, 3])),
                                                 "lines": {"categories": ["a"]}}})
    if draw(st.booleans()):
        rules.append({"key": "items", "effect": {"type": "per_item", "points": draw(st.integers(1, 5)),
                                                 "lines": {"categories": ["b"]}}})
    return {"stacking": draw(st.sampled_from(["multiply", "add", "max"])), "rules": rules}


def _order(ls: list[Line], discount: Decimal) -> OrderFacts:
    subtotal = sum((line.net for line in ls), Decimal(0))
    return OrderFacts(id="o", total=max(subtotal - discount, Decimal(0)), subtotal=subtotal, lines=tuple(ls),
                      discount_total=discount)


@settings(max_examples=200, deadline=None)
@given(ls=lines(), discount=st.decimals(min_value=0, max_value=300, places=2), doc=documents(),
       tier=st.sampled_from([Decimal(1), Decimal("1.25"), Decimal(2)]))
def test_points_are_never_negative_and_reward_lines_never_earn(
    ls: list[Line], discount: Decimal, doc: dict[str, Any], tier: Decimal
) -> None:
    ev = evaluate(parse_document(doc, prefix="1"), Occurrence("order", datetime(2024, 3, 2, tzinfo=UTC),
                                                               _order(ls, discount)),
                  CustomerFacts(1), Context(tier_multiplier=tier))
    assert ev.points >= 0 and all(v >= 0 for v in ev.lines.values())
    assert sum(ev.lines.values()) == ev.points
    rewards = {line.key for line in ls if line.is_reward or line.net <= 0}
    assert not rewards & {k for k, v in ev.lines.items() if v}
    assert all(r.points >= 0 for r in ev.rules)


@settings(max_examples=300, deadline=None)
@given(ls=lines(), discount=st.decimals(min_value=0, max_value=300, places=2))
def test_proration_adds_up_and_never_exceeds_the_line(ls: list[Line], discount: Decimal) -> None:
    net = net_paid(ls, discount, sum((line.net for line in ls), Decimal(0)))
    earning = {line.key: line.net for line in ls if not line.is_reward and line.net > 0}
    assert set(net) == set(earning)
    assert all(Decimal(0) <= net[k] <= earning[k] for k in net)
    pool = discount + sum((-line.net for line in ls if line.net < 0), Decimal(0))
    expected = max(sum(earning.values(), Decimal(0)) - pool, Decimal(0))
    assert sum(net.values(), Decimal(0)) == expected


@given(total=st.integers(0, 10_000), weights=st.lists(st.decimals(min_value=0, max_value=1000, places=3),
                                                       min_size=1, max_size=8))
def test_allocation_is_exact(total: int, weights: list[Decimal]) -> None:
    parts = allocate(total, {str(i): w for i, w in enumerate(weights)})
    if any(w > 0 for w in weights):
        assert sum(parts.values()) == total and all(p >= 0 for p in parts.values())


@settings(max_examples=200, deadline=None)
@given(lines_=st.lists(st.tuples(st.integers(0, 500), st.integers(1, 6)), min_size=1, max_size=4), data=st.data())
def test_returning_every_unit_reverses_exactly_what_was_earned(
    lines_: list[tuple[int, int]], data: st.DataObject
) -> None:
    earned = {"lines": {str(i): {"points": p, "quantity": q} for i, (p, q) in enumerate(lines_)}, "base": "100"}
    left = {i: q for i, (_, q) in enumerate(lines_)}
    prior: list[dict[str, Any]] = []
    total = 0
    while any(left.values()):
        open_lines = [i for i, units in left.items() if units]
        i = data.draw(st.sampled_from(open_lines))
        n = data.draw(st.integers(1, left[i]))
        left[i] -= n
        taken, detail = points_to_reverse(earned, prior, {"lines": [{"position": i, "quantity": n}], "amount": "1"})
        assert taken >= 0
        total += taken
        prior.append({**detail, "reversed": taken})
    assert total == sum(p for p, _ in lines_)
