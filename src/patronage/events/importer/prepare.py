"""Orders for the bulk path: validated, hashed and totalled as plain dicts, the API's rules unchanged.

Building a pydantic model per order (and its lines) costs more than everything else the import does
per order, so the happy path validates into plain dicts with a ``TypeAdapter`` over TypedDicts that
carry the same constraints as ``OrderIn``, and checks the money rule on those dicts. It is a filter, not
a second rule book: anything it does not accept as plainly valid is validated again by ``OrderIn`` and
``rules.check_order`` themselves, so every error (and every edge case it does not handle) is the API's.
``tests/events/test_import_prepare.py`` checks that both agree - values, totals and ``content_hash``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, NotRequired

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from patronage.events import rules
from patronage.events.schemas import (
    CENT,
    MAX_LINES,
    Amount,
    Channel,
    Currency,
    Email,
    Instant,
    NonNegative,
    OrderIn,
    OrderLineIn,
    OrderStatus,
    content_hash,
)
from patronage.kit.schemas import storable_problem

ZERO = Decimal(0)
# ``Input`` refuses NUL characters in any text (PostgreSQL cannot store them): a pattern here, in Rust.
_NO_NUL = r"^[^\x00]*$"
_Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_NO_NUL)]


_LineId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_NUL)]
_Sku = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_NO_NUL)]
_Text200 = Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]
_Text300 = Annotated[str, StringConstraints(max_length=300, pattern=_NO_NUL)]

_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Line(TypedDict):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]

    line_id: NotRequired[_LineId | None]
    sku: NotRequired[_Sku | None]
    name: NotRequired[_Text300 | None]
    category: NotRequired[_Text200 | None]
    quantity: NotRequired[Annotated[int, Field(ge=1, le=1_000_000)]]
    unit_price: Amount
    discount: NotRequired[NonNegative]
    is_reward: NotRequired[bool]


class _Order(TypedDict):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]

    external_id: _Id
    customer_external_id: NotRequired[_Id | None]
    customer_email: NotRequired[Email]
    placed_at: Instant
    currency: NotRequired[Currency | None]
    channel: NotRequired[Channel | None]
    store: NotRequired[_Text200 | None]
    status: NotRequired[OrderStatus]
    lines: NotRequired[Annotated[list[_Line], Field(max_length=MAX_LINES)]]
    subtotal: NotRequired[NonNegative | None]
    discount_total: NotRequired[NonNegative]
    shipping_total: NotRequired[NonNegative]
    tax_total: NotRequired[NonNegative]
    other_total: NotRequired[Amount]
    taxes_included: NotRequired[bool]
    total: NotRequired[NonNegative | None]
    attributes: NotRequired[dict[str, Any]]


_VALIDATE = TypeAdapter(_Order)
# The defaults of OrderIn / OrderLineIn, in their field order (the order of the canonical JSON).
ORDER_DEFAULTS: dict[str, Any] = {
    name: (None if info.is_required() else info.get_default(call_default_factory=True))
    for name, info in OrderIn.model_fields.items()
}
LINE_DEFAULTS: dict[str, Any] = {
    name: (None if info.is_required() else info.get_default(call_default_factory=True))
    for name, info in OrderLineIn.model_fields.items()
}


class _FullLine(TypedDict):
    line_id: str | None
    sku: str | None
    name: str | None
    category: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal
    is_reward: bool


class _FullOrder(TypedDict):
    external_id: str
    customer_external_id: str | None
    customer_email: str | None
    placed_at: datetime
    currency: str | None
    channel: str | None
    store: str | None
    status: str
    lines: list[_FullLine]
    subtotal: Decimal | None
    discount_total: Decimal
    shipping_total: Decimal
    tax_total: Decimal
    other_total: Decimal
    taxes_included: bool
    total: Decimal | None
    attributes: dict[str, Any]


# Serialises exactly as ``OrderIn.model_dump_json`` does (same field order, same value formats).
_CANONICAL = TypeAdapter(_FullOrder)


@dataclass(slots=True)
class PreparedOrder:
    """One valid order: its fields as ``OrderIn`` would hold them, its content hash and its totals.

    ``canonical``: the JSON the hash was taken of, when known (``packed.py`` carries it along).
    """

    data: dict[str, Any]
    digest: str
    subtotal: Decimal
    total: Decimal
    canonical: bytes = field(default=b"", compare=False, repr=False)

    def model(self) -> OrderIn:
        """The ``OrderIn`` (for the single-order service: updates, e-mail-only customers)."""
        return _model(self.data)


def _model(data: dict[str, Any]) -> OrderIn:
    values = dict(data)
    values["lines"] = [OrderLineIn.model_construct(**line) for line in data["lines"]]
    return OrderIn.model_construct(**values)


def canonical_json(data: dict[str, Any]) -> bytes:
    """An order's canonical JSON (``OrderIn.model_dump_json`` of it): what ``content_hash`` hashes."""
    return _CANONICAL.dump_json(data)  # type: ignore[arg-type]


def order_from_canonical(canonical: bytes) -> OrderIn:
    """The ``OrderIn`` whose canonical JSON this is (values as validated, nothing re-checked)."""
    return _model(_CANONICAL.validate_json(canonical))  # type: ignore[arg-type]


def from_model(order: OrderIn) -> PreparedOrder:
    """A validated ``OrderIn`` as a prepared order; ``PatronageError`` when the money rule fails."""
    totals = rules.check_order(order)
    data = order.model_dump()
    return PreparedOrder(data, content_hash(order), totals.subtotal, totals.total)


def from_values(data: dict[str, Any]) -> PreparedOrder:
    """An order built by code in canonical form (every ``OrderIn`` field, lines complete; the demo data):
    hashed and totalled as ``OrderIn`` would be, without a model. Anything the fast rules do not accept
    goes through ``OrderIn`` (and raises its error)."""
    totals = _totals(data)
    if totals is None:
        return prepare(data)
    canonical = canonical_json(data)
    return PreparedOrder(data, hashlib.sha256(canonical).hexdigest(), totals[0], totals[1], canonical)


def prepare(raw: dict[str, Any]) -> PreparedOrder:
    """Validate one order as the API does; raises ``pydantic.ValidationError`` or ``PatronageError``."""
    fast = _fast(raw)
    if fast is not None:
        return fast
    return from_model(OrderIn.model_validate(raw))


def _fast(raw: dict[str, Any]) -> PreparedOrder | None:
    try:
        valid: dict[str, Any] = _VALIDATE.validate_python(raw)  # type: ignore[assignment]
    except ValidationError:
        return None
    attributes = valid.get("attributes")
    if attributes and storable_problem(attributes):
        return None
    data = {**ORDER_DEFAULTS, **valid}
    data["lines"] = [{**LINE_DEFAULTS, **line} for line in valid.get("lines", ())]
    if data["attributes"] is ORDER_DEFAULTS["attributes"]:
        data["attributes"] = {}  # never share the default dict between orders
    totals = _totals(data)
    if totals is None:
        return None
    canonical = canonical_json(data)
    return PreparedOrder(data, hashlib.sha256(canonical).hexdigest(), totals[0], totals[1], canonical)


def _totals(order: dict[str, Any]) -> tuple[Decimal, Decimal] | None:
    """``rules.check_order`` for an order that passes it; None for anything else (the rule then explains)."""
    net = ZERO
    plain = bool(order["customer_external_id"] or order["customer_email"])
    for line in order["lines"]:
        quantity, unit_price, discount = line["quantity"], line["unit_price"], line["discount"]
        gross = quantity * unit_price
        plain = plain and (unit_price >= 0 or line["is_reward"]) and discount <= abs(gross) + CENT
        net += gross - discount
    subtotal = order["subtotal"]
    if subtotal is None:
        plain = plain and bool(order["lines"])
        subtotal = max(net, ZERO)
    elif order["lines"]:
        plain = plain and abs(subtotal - net) <= CENT
    computed = rules.expected_total(
        subtotal, discount=order["discount_total"], shipping=order["shipping_total"], tax=order["tax_total"],
        other=order["other_total"], taxes_included=order["taxes_included"],
    )
    total = order["total"]
    if total is None:
        plain, total = plain and computed >= 0, computed
    else:
        plain = plain and abs(total - computed) <= CENT
    return (subtotal, total) if plain else None
