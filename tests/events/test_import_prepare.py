"""The bulk path's order preparation agrees with ``OrderIn`` + ``rules.check_order`` on every input:
the same values, totals and content hash when valid, the same error when not."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from pydantic import ValidationError

from patronage.events import rules
from patronage.events.importer.prepare import PreparedOrder, _fast, from_values, prepare
from patronage.events.schemas import OrderIn, content_hash
from patronage.kit.errors import PatronageError

BASE: dict[str, Any] = {
    "external_id": "A-1", "customer_external_id": "c-1", "placed_at": "2024-03-01T10:00:00+01:00",
    "channel": "web", "shipping_total": "4.90", "total": "34.90",
    "lines": [{"line_id": "L1", "sku": "TEA", "name": "Tea", "quantity": 2, "unit_price": "10.00"},
              {"sku": "MUG", "quantity": "1", "unit_price": "15.0", "discount": "5"}],
}

# (path, value) edits: valid variants, and every kind of rejection the API makes.
EDITS: list[tuple[tuple[Any, ...], Any]] = [
    (("external_id",), "  padded  "), (("external_id",), ""), (("external_id",), "x" * 201),
    (("external_id",), "nul\x00"), (("customer_external_id",), None), (("customer_email",), "Ana@Example.COM"),
    (("customer_email",), "not-an-email"), (("placed_at",), "2024-03-01 10:00:00"),
    (("placed_at",), "0001-01-01T00:00:00+01:00"), (("currency",), "eur"), (("currency",), "XXX"),
    (("channel",), "fax"), (("status",), "cancelled"), (("status",), "lost"), (("store",), "Lisbon"),
    (("subtotal",), "30.00"), (("subtotal",), "31.00"), (("total",), None), (("total",), "35.00"),
    (("total",), "34.905"), (("total",), "34.90001"), (("total",), "-1"), (("discount_total",), "40"),
    (("tax_total",), "2.00"), (("taxes_included",), "yes"), (("other_total",), "-1.00"),
    (("attributes",), {"gift": True}), (("attributes",), {"big": 2**70}), (("attributes",), {"k": "a\x00"}),
    (("lines",), []), (("lines", 0, "quantity"), 0), (("lines", 0, "quantity"), "2.5"),
    (("lines", 0, "unit_price"), "-1.00"), (("lines", 0, "unit_price"), "abc"), (("lines", 1, "discount"), "99"),
    (("lines", 1, "is_reward"), "maybe"), (("lines", 0, "sku"), ""), (("lines", 0, "name"), "n" * 301),
    (("lines", 0, "extra"), 1), (("unknown",), 1), (("lines", 0, "unit_price"), 10.5),
]


def edited(path: tuple[Any, ...], value: Any, base: dict[str, Any] = BASE) -> dict[str, Any]:
    data = copy.deepcopy(base)
    target: Any = data
    for key in path[:-1]:
        if isinstance(target, list) and key >= len(target):
            return data  # an earlier edit removed the lines
        target = target[key]
    if value is None and path[-1] in target and path[-1] != "customer_external_id":
        del target[path[-1]]
    else:
        target[path[-1]] = value
    if path == ("customer_external_id",):
        del data["customer_external_id"]
    return data


def reference(data: dict[str, Any]) -> PreparedOrder | str:
    try:
        model = OrderIn.model_validate(data)
        totals = rules.check_order(model)
    except ValidationError as exc:
        return f"invalid: {[(e['loc'], e['msg']) for e in exc.errors()]}"
    except PatronageError as exc:
        return f"rule: {exc.to_problem()}"
    return PreparedOrder(model.model_dump(), content_hash(model), totals.subtotal, totals.total)


def outcome(data: dict[str, Any]) -> PreparedOrder | str:
    try:
        return prepare(data)
    except ValidationError as exc:
        return f"invalid: {[(e['loc'], e['msg']) for e in exc.errors()]}"
    except PatronageError as exc:
        return f"rule: {exc.to_problem()}"


@pytest.mark.parametrize(("path", "value"), EDITS)
def test_prepare_agrees_with_the_api(path: tuple[Any, ...], value: Any) -> None:
    data = edited(path, value)
    assert outcome(data) == reference(data)


def test_prepare_agrees_on_random_combinations() -> None:
    rnd = random.Random(3)
    for _ in range(300):
        data = BASE
        for path, value in rnd.sample(EDITS, rnd.randint(1, 3)):
            data = edited(path, value, data)
        assert outcome(data) == reference(data)


def test_the_fast_path_takes_plainly_valid_orders() -> None:
    # Otherwise the tests above would only compare the API with itself (the fallback).
    assert _fast(BASE) is not None and _fast(edited(("attributes",), {"gift": True})) is not None
    assert _fast(edited(("total",), "35.00")) is None  # a wrong total: the API's rule explains it


def test_from_values_hashes_like_the_api() -> None:
    model = OrderIn.model_validate(BASE)
    prepared = from_values(model.model_dump())
    assert prepared.digest == content_hash(model)
    assert prepared.model() == model
