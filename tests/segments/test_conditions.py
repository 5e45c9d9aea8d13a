"""Segment definitions are validated without a database; every error names its path."""

from __future__ import annotations

from typing import Any

import pytest

from patronage.kit.errors import ValidationFailed
from patronage.segments.compiler import validate
from patronage.segments.conditions import Group, Leaf


def errors(tree: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as info:
        validate(tree)
    return [(e["field"], e["message"]) for e in info.value.extra["errors"]]


def test_valid_tree_parses() -> None:
    node = validate({"and": [
        {"field": "orders_count", "op": "gte", "value": 2},
        {"or": [{"field": "country", "op": "in", "value": ["PT", "ES"]},
                {"not": {"field": "tags", "op": "any_of", "value": ["vip"]}}]},
        {"field": "orders_in_window", "op": "gte", "value": 1, "within_days": 90},
        {"field": "event_count", "event_type": "page_view", "op": "gt", "value": 3},
        {"field": "attributes.vip", "op": "is_true"},
        {"field": "consent.email", "op": "is_true"},
        {"field": "last_order_at", "op": "within_last_days", "value": 30},
    ]})
    assert isinstance(node, Group) and node.op == "and" and len(node.children) == 7
    leaf = node.children[0]
    assert isinstance(leaf, Leaf) and leaf.path == "definition.and[0]"


def test_errors_name_their_path() -> None:
    found = errors({"and": [
        {"field": "orders_count", "op": "gte", "value": "two"},
        {"or": [{"field": "nope", "op": "eq", "value": 1}, {"field": "country", "op": "gte", "value": "PT"}]},
        {"field": "orders_in_window", "op": "gte", "value": 1},
    ]})
    assert ("definition.and[0].value", "must be a number") in found
    assert ("definition.and[1].or[0].field", "unknown field 'nope'") in found
    assert any(path == "definition.and[1].or[1].op" for path, _ in found)
    assert ("definition.and[2].within_days", "required for 'orders_in_window'") in found


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        ([], "definition"),
        ({"and": []}, "definition.and"),
        ({"and": [{"field": "orders_count"}], "or": []}, "definition"),
        ({"not": {"field": "email", "op": "is_set", "value": 3}}, "definition.not.value"),
        ({"field": "orders_count", "op": "between", "value": [5, 1]}, "definition.value"),
        ({"field": "orders_count", "op": "eq", "value": 1, "extra": True}, "definition.extra"),
        ({"field": "first_order_at", "op": "after", "value": "yesterday"}, "definition.value"),
        ({"field": "event_count", "op": "gte", "value": 1, "within_days": 0, "event_type": "x"},
         "definition.within_days"),
        ({"field": "consent.carrier_pigeon", "op": "is_true"}, "definition.field"),
        ({"field": "attributes.size", "op": "eq", "value": None}, "definition.type"),
    ],
)
def test_invalid_trees(tree: Any, path: str) -> None:
    assert path in [p for p, _ in errors(tree)]


def test_depth_and_size_limits() -> None:
    tree: Any = {"field": "orders_count", "op": "gte", "value": 1}
    for _ in range(13):
        tree = {"not": tree}
    assert any("deeper" in m for _, m in errors(tree))
    wide = {"or": [{"field": "orders_count", "op": "eq", "value": i} for i in range(201)]}
    assert any("at most 200" in m for _, m in errors(wide))


def test_unknown_field_is_a_422_with_code() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate({"field": "favourite_colour", "op": "eq", "value": "red"})
    assert info.value.status == 422
    assert info.value.extra["errors"][0]["type"] == "unknown_field"
