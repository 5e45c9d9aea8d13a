"""The bulk path's order preparation agrees with ``OrderIn`` + ``rules.check_order`` on every input:
the same values, totals and content hash when valid, the same error when not."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from patronage.events import rules
from patronage.events.importer.prepare import PreparedOrder, _fast, from_values, prepare, prepare_json
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


# ---- JSON Lines: validated from the line's bytes (``prepare_json``) --------------------------------------
def json_outcome(line: bytes) -> tuple[Any, ...] | None:
    """What the import's fast JSON path makes of a line: None when it leaves it to ``json.loads`` + ``prepare``."""
    prepared = prepare_json(line)
    return None if prepared is None else _with_canonical(prepared)


def _with_canonical(prepared: PreparedOrder) -> tuple[Any, ...]:
    return prepared.data, prepared.digest, prepared.subtotal, prepared.total, prepared.canonical


def api_outcome(line: bytes) -> tuple[Any, ...] | str:
    """What the API makes of the same line: ``json.loads``, then ``OrderIn`` (through ``prepare``)."""
    result = outcome(json.loads(line))
    return result if isinstance(result, str) else _with_canonical(result)


def assert_json_path_agrees(line: bytes) -> None:
    fast = json_outcome(line)
    if fast is not None:
        api = api_outcome(line)
        assert fast == api
        # Same values in the same form (Decimal("10.0") == Decimal("10") would hide a difference).
        assert repr(fast[0]) == repr(api[0])


@pytest.mark.parametrize(("path", "value"), EDITS)
def test_the_json_path_agrees_with_the_api(path: tuple[Any, ...], value: Any) -> None:
    assert_json_path_agrees(json.dumps(edited(path, value)).encode())


# Raw JSON texts for one amount: floats in every form, integers, strings the plain form does not cover.
AMOUNTS = ["10", "10.0", "1e2", "1E2", "0.1e1", "10.990", "10.5", "-0", "-0.0", "0", "1.00000000000000000001",
           "12345678901234.1234", "123456789012345.1", "1e-5", "1e16", '"10.00"', '" 10.00 "', '"1e2"', '"-0"',
           '"0010.5"', '"10."', '".5"', '"+1"', '"1_000"', '"NaN"', '"Infinity"', "true", "null", '"10.00\\u0000"']


@pytest.mark.parametrize("amount", AMOUNTS)
@pytest.mark.parametrize("field", ["unit_price", "discount", "total", "other_total", "shipping_total"])
def test_json_amounts_agree_with_the_api(field: str, amount: str) -> None:
    data = copy.deepcopy(BASE)
    target = data["lines"][1] if field in ("unit_price", "discount") else data
    target[field] = "__AMOUNT__"
    if field != "total":
        data["total"] = None
    assert_json_path_agrees(json.dumps(data).replace('"__AMOUNT__"', amount).encode())


JSON_EDGES = [
    b'{"external_id":" padded ","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z","total":"1"}',
    b'{"external_id":"A","customer_external_id":" c ","placed_at":"2024-01-05T10:00:00Z",'
    b'"lines":[{"unit_price":"1"}],"total":"1"}',
    b'{"external_id":"A","external_id":"B","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z",'
    b'"lines":[{"unit_price":"1"}]}',
    b'{"external_id":"A","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z",'
    b'"lines":[{"unit_price":"1","name":"\\ud800"}]}',
    b'{"external_id":"A","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z",'
    b'"lines":[{"unit_price":"1","name":"\\ud83d\\ude00 \\u00e9"}]}',
    b'{"external_id":"A\\u0000","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z",'
    b'"lines":[{"unit_price":"1"}]}',
    b'{"external_id":"A","customer_external_id":"c","placed_at":1700000000.5,"lines":[{"unit_price":"1"}]}',
    b'{"external_id":"A","customer_external_id":"c","placed_at":"2024-01-05T10:00:00+05:30",'
    b'"lines":[{"unit_price":"1","quantity":2.0,"is_reward":"yes"}],"taxes_included":1}',
    b'{"external_id":"A","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z","lines":[{"unit_price":"1"}],'
    b'"attributes":{"a":1,"a":[0.1,1e400,NaN,123456789012345678901234567890],"b":{"c":null}}}',
    b'{"external_id":"A","customer_email":" Ana@Example.COM ","placed_at":"2024-01-05T10:00:00Z",'
    b'"currency":"eur","lines":[{"unit_price":"1"}]}',
    b'{"external_id":"A","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z",'
    b'"lines":[{"unit_price":"1","quantity":1000001}]}',
    b'{"external_id":5,"customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z","lines":[{"unit_price":"1"}]}',
    b' {"external_id":"A","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z","lines":[{"unit_price":"1"}]}',
]


@pytest.mark.parametrize("line", JSON_EDGES)
def test_json_edge_cases_agree_with_the_api(line: bytes) -> None:
    assert_json_path_agrees(line)


def test_the_json_path_keeps_the_external_id_as_written() -> None:
    # A padded id is left to ``json.loads``: the error report quotes the id as the file wrote it.
    assert prepare_json(JSON_EDGES[0]) is None
    assert prepare_json(JSON_EDGES[1]) is not None  # only the order's own id must be unpadded


def test_the_json_path_takes_plainly_valid_orders() -> None:
    prepared = prepare_json(json.dumps(BASE).encode())
    assert prepared is not None and _with_canonical(prepared) == api_outcome(json.dumps(BASE).encode())


_money_text = st.one_of(
    st.sampled_from([0, 1, 2, 4, 5]).flatmap(
        lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places)).map(str),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e16, max_value=1e16).map(repr),
    st.integers(min_value=-(10**19), max_value=10**19).map(str),
    st.from_regex(r"-?[0-9]{1,16}(\.[0-9]{0,6})?([eE][-+]?[0-9]{1,2})?", fullmatch=True),
)


@given(
    amounts=st.lists(st.tuples(_money_text, st.booleans()), min_size=1, max_size=3),
    total=st.one_of(st.none(), _money_text),
)
@settings(max_examples=300, deadline=None)
def test_random_json_amounts_agree_with_the_api(amounts: list[tuple[str, bool]], total: str | None) -> None:
    lines = ",".join(
        f'{{"sku":"S","quantity":2,"unit_price":{text if as_number else json.dumps(text)}}}'
        for text, as_number in amounts
    )
    line = ('{"external_id":"A","customer_external_id":"c","placed_at":"2024-01-05T10:00:00Z",'
            f'"lines":[{lines}],"total":{"null" if total is None else json.dumps(total)}}}')
    try:
        json.loads(line)
    except ValueError:
        return  # not JSON (a number form JSON does not have): ``JsonLine.record`` reports it
    assert_json_path_agrees(line.encode())


@given(st.text(max_size=12))
@settings(max_examples=200, deadline=None)
def test_random_texts_agree_with_the_api(text: str) -> None:
    for field in ("external_id", "customer_external_id", "store", "currency", "customer_email"):
        data = {**BASE, field: text}
        assert_json_path_agrees(json.dumps(data).encode())
        assert_json_path_agrees(json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass"))
