"""Orders for the bulk path: validated, hashed and totalled as plain dicts, the API's rules unchanged.

Building a pydantic model per order (and its lines) costs more than everything else the import does
per order, so the happy path validates into plain dicts with a ``TypeAdapter`` over TypedDicts that
carry the same constraints and defaults as ``OrderIn``, and checks the money rule on those dicts. It is a
filter, not a second rule book: anything it does not accept as plainly valid is validated again by
``OrderIn`` and ``rules.check_order`` themselves, so every error (and every edge case it does not handle)
is the API's. ``tests/events/test_import_prepare.py`` checks that both agree - values, totals and
``content_hash``.

A JSON Lines record is validated straight from its bytes (``prepare_json``: pydantic-core's parser, no
``json.loads``). The API parses with ``json.loads`` first, so that path is narrower still: money must be
a plain decimal string or a JSON integer (a JSON float such as ``1e2`` would become ``Decimal("100")``
where the API gets ``Decimal("100.0")``) and the order's ``external_id`` must be unpadded (it is also the
record's key in the error report, which quotes it as written). Anything else takes the ``json.loads`` path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import CoreSchema, core_schema
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
# Nothing for ``strip_whitespace`` to strip (Rust's ``trim`` and ``\s`` agree on what whitespace is).
_UNPADDED = r"^[^\s\x00](?:[^\x00]*[^\s\x00])?$"


def _json_first(accepted: CoreSchema) -> GetPydanticSchema:
    """JSON input must pass ``accepted`` and is then validated as the Python value ``json.loads`` gives;
    Python input is validated as usual. Keeps ``validate_json`` where it agrees with the API."""

    def schema(source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        python = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([accepted, python]), python_schema=python
        )

    return GetPydanticSchema(schema)


# Money in JSON as the API's examples write it: a string whose form makes it valid (up to 14 whole digits
# and 4 decimals, as ``max_digits=18, decimal_places=4`` allow), turned into the same Decimal pydantic makes
# of it, without its digit counting. Integers take the API's validation. A JSON float is refused: it would
# become a Decimal by another route than the API's ``float`` -> ``str`` -> ``Decimal`` (``1e2`` -> 100, not 100.0).
PLAIN_AMOUNT = r"^-?(?:0|[1-9][0-9]{0,13})(?:\.[0-9]{1,4})?$"
PLAIN_NON_NEGATIVE = r"^(?:0|[1-9][0-9]{0,13})(?:\.[0-9]{1,4})?$"


def _json_money(plain: str) -> GetPydanticSchema:
    def schema(source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        python = handler(source)
        text = core_schema.chain_schema([
            core_schema.str_schema(strict=True, pattern=plain), core_schema.no_info_plain_validator_function(Decimal),
        ])
        integer = core_schema.chain_schema([core_schema.int_schema(strict=True), python])
        return core_schema.json_or_python_schema(
            json_schema=core_schema.union_schema([text, integer]), python_schema=python
        )

    return GetPydanticSchema(schema)


_AS_WRITTEN = _json_first(core_schema.str_schema(strict=True, strip_whitespace=False, pattern=_UNPADDED))
_Money = Annotated[Amount, _json_money(PLAIN_AMOUNT)]
_NonNegativeMoney = Annotated[NonNegative, _json_money(PLAIN_NON_NEGATIVE)]
_Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_NO_NUL)]
_LineId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_NUL)]
_Sku = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_NO_NUL)]
_Text200 = Annotated[str, StringConstraints(max_length=200, pattern=_NO_NUL)]
_Text300 = Annotated[str, StringConstraints(max_length=300, pattern=_NO_NUL)]

_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _default(model: type[BaseModel], name: str) -> Any:
    """The API model's default for a field that may be left out: the validated dict is then complete,
    in the model's field order (the canonical JSON's)."""
    info = model.model_fields[name]
    if info.default_factory is not None:
        return Field(default_factory=info.default_factory)
    return Field(default=info.default)


class _Line(TypedDict):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]

    line_id: NotRequired[Annotated[_LineId | None, _default(OrderLineIn, "line_id")]]
    sku: NotRequired[Annotated[_Sku | None, _default(OrderLineIn, "sku")]]
    name: NotRequired[Annotated[_Text300 | None, _default(OrderLineIn, "name")]]
    category: NotRequired[Annotated[_Text200 | None, _default(OrderLineIn, "category")]]
    quantity: NotRequired[Annotated[int, Field(ge=1, le=1_000_000), _default(OrderLineIn, "quantity")]]
    unit_price: _Money
    discount: NotRequired[Annotated[_NonNegativeMoney, _default(OrderLineIn, "discount")]]
    is_reward: NotRequired[Annotated[bool, _default(OrderLineIn, "is_reward")]]


class _Order(TypedDict):
    __pydantic_config__ = _CONFIG  # type: ignore[misc]

    external_id: Annotated[_Id, _AS_WRITTEN]
    customer_external_id: NotRequired[Annotated[_Id | None, _default(OrderIn, "customer_external_id")]]
    customer_email: NotRequired[Annotated[Email, _default(OrderIn, "customer_email")]]
    placed_at: Instant
    currency: NotRequired[Annotated[Currency | None, _default(OrderIn, "currency")]]
    channel: NotRequired[Annotated[Channel | None, _default(OrderIn, "channel")]]
    store: NotRequired[Annotated[_Text200 | None, _default(OrderIn, "store")]]
    status: NotRequired[Annotated[OrderStatus, _default(OrderIn, "status")]]
    lines: NotRequired[Annotated[list[_Line], Field(max_length=MAX_LINES), _default(OrderIn, "lines")]]
    subtotal: NotRequired[Annotated[_NonNegativeMoney | None, _default(OrderIn, "subtotal")]]
    discount_total: NotRequired[Annotated[_NonNegativeMoney, _default(OrderIn, "discount_total")]]
    shipping_total: NotRequired[Annotated[_NonNegativeMoney, _default(OrderIn, "shipping_total")]]
    tax_total: NotRequired[Annotated[_NonNegativeMoney, _default(OrderIn, "tax_total")]]
    other_total: NotRequired[Annotated[_Money, _default(OrderIn, "other_total")]]
    taxes_included: NotRequired[Annotated[bool, _default(OrderIn, "taxes_included")]]
    total: NotRequired[Annotated[_NonNegativeMoney | None, _default(OrderIn, "total")]]
    attributes: NotRequired[Annotated[dict[str, Any], _default(OrderIn, "attributes")]]


_VALIDATE = TypeAdapter(_Order)


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


def prepare_json(raw: bytes) -> PreparedOrder | None:
    """One JSON object's bytes as a prepared order when plainly valid (see the module's docstring);
    None for anything else: the caller parses it and calls ``prepare``, which has the API's answer."""
    try:
        valid: dict[str, Any] = _VALIDATE.validate_json(raw)  # type: ignore[assignment]
    except ValidationError:
        return None
    return _checked(valid)


def _fast(raw: dict[str, Any]) -> PreparedOrder | None:
    try:
        valid: dict[str, Any] = _VALIDATE.validate_python(raw)  # type: ignore[assignment]
    except ValidationError:
        return None
    return _checked(valid)


def _checked(data: dict[str, Any]) -> PreparedOrder | None:
    """A validated order (every field, defaults filled in) hashed and totalled, if the rules pass."""
    attributes = data["attributes"]
    if attributes and storable_problem(attributes):
        return None
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
