"""Pure ingestion rules: order money checks, status moves, and how a return splits over an order's lines.

No database here; every function raises ``field_error`` (a 422 naming the field) on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from patronage.events.schemas import CENT, OrderIn, ReturnIn
from patronage.kit.errors import field_error

ZERO = Decimal(0)
_PLACES = Decimal("0.0001")

# An order upsert moves the status only forward (a re-sent older snapshot never rolls an order back);
# the status endpoint may set any status. Cancelled is final.
STATUS_RANK = {"pending": 0, "paid": 1, "shipped": 2, "delayed": 2, "delivered": 3, "cancelled": 4}
FINAL_STATUSES = frozenset({"cancelled"})
# Fields an order keeps from its first recording: changing them is a 422 (send a new order instead).
IMMUTABLE_ORDER_FIELDS = ("customer", "currency", "placed_at")


def line_net(quantity: int, unit_price: Decimal, discount: Decimal) -> Decimal:
    return quantity * unit_price - discount


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    total: Decimal


def expected_total(
    subtotal: Decimal, *, discount: Decimal, shipping: Decimal, tax: Decimal, other: Decimal, taxes_included: bool
) -> Decimal:
    return subtotal - discount + shipping + other + (ZERO if taxes_included else tax)


def check_order(order: OrderIn) -> Totals:
    """The order's subtotal and total, computed where omitted and checked to the cent where given."""
    if not order.customer_external_id and not order.customer_email:
        raise field_error("customer_external_id", "send customer_external_id or customer_email", code="missing")
    net = ZERO
    for i, line in enumerate(order.lines):
        if line.unit_price < 0 and not line.is_reward:
            raise field_error(f"lines.{i}.unit_price", "must not be negative unless the line is_reward")
        gross = line.quantity * line.unit_price
        if line.discount > abs(gross) + CENT:
            raise field_error(f"lines.{i}.discount", f"larger than the line's amount {gross}")
        net += line_net(line.quantity, line.unit_price, line.discount)
    if order.subtotal is None:
        if not order.lines:
            raise field_error("subtotal", "send lines or a subtotal", code="missing")
        subtotal = max(net, ZERO)
    else:
        subtotal = order.subtotal
        if order.lines and abs(subtotal - net) > CENT:
            raise field_error("subtotal", f"{subtotal} does not match the lines, which add up to {net}")
    computed = expected_total(
        subtotal, discount=order.discount_total, shipping=order.shipping_total, tax=order.tax_total,
        other=order.other_total, taxes_included=order.taxes_included,
    )
    if order.total is None:
        if computed < 0:
            raise field_error("discount_total", f"makes the total negative ({computed})")
        return Totals(subtotal, computed)
    if abs(order.total - computed) > CENT:
        rule = "subtotal - discount_total + shipping_total + other_total" + (
            "" if order.taxes_included else " + tax_total"
        )
        raise field_error("total", f"{order.total} does not equal {rule} = {computed} (to the cent)")
    return Totals(subtotal, order.total)


def upsert_moves_status(current: str, sent: str) -> bool:
    """Whether an order re-sent with ``sent`` changes an order now ``current``."""
    if current in FINAL_STATUSES or sent == current:
        return False
    return STATUS_RANK[sent] > STATUS_RANK[current]


def check_status_change(current: str, new: str) -> bool:
    """True when ``new`` is a change; 422 when the order can no longer change."""
    if new == current:
        return False
    if current in FINAL_STATUSES:
        raise field_error("status", f"the order is {current}; its status can no longer change", code="final")
    return True


# ---- returns -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineView:
    position: int
    line_id: str | None
    sku: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal
    is_reward: bool

    @property
    def net(self) -> Decimal:
        return line_net(self.quantity, self.unit_price, self.discount)

    def share(self, quantity: int) -> Decimal:
        """The net amount of ``quantity`` units of this line."""
        if quantity >= self.quantity:
            return self.net
        return (self.net * quantity / self.quantity).quantize(_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class OrderView:
    currency: str
    total: Decimal
    refunded_total: Decimal
    lines: Sequence[LineView]

    @property
    def remaining(self) -> Decimal:
        return self.total - self.refunded_total


@dataclass(frozen=True)
class ReturnPlan:
    kind: str  # full | lines | amount
    amount: Decimal
    lines: list[dict[str, Any]]


def returned_quantities(applied_lines: Sequence[Sequence[Mapping[str, Any]]]) -> dict[int, int]:
    """Units already returned per line position, from the resolved lines of applied returns."""
    done: dict[int, int] = {}
    for lines in applied_lines:
        for line in lines:
            position = line.get("position")
            if isinstance(position, int):
                done[position] = done.get(position, 0) + int(line.get("quantity") or 0)
    return done


def _find_line(order: OrderView, ref: Any, index: int, left: dict[int, int]) -> LineView:
    if ref.line_id is not None:
        for line in order.lines:
            if line.line_id == ref.line_id:
                return line
        raise field_error(f"lines.{index}.line_id", f"the order has no line {ref.line_id!r}", code="unknown_line")
    if ref.sku is None:
        raise field_error(f"lines.{index}.line_id", "send the line's line_id or sku", code="missing")
    candidates = [line for line in order.lines if line.sku == ref.sku]
    if not candidates:
        raise field_error(f"lines.{index}.sku", f"the order has no line with sku {ref.sku!r}", code="unknown_line")
    # The first line of this sku that still has enough units left, else the one with most left.
    for line in candidates:
        if left.get(line.position, line.quantity) >= ref.quantity:
            return line
    return max(candidates, key=lambda line: left.get(line.position, line.quantity))


def plan_return(order: OrderView, data: ReturnIn, returned: Mapping[int, int]) -> ReturnPlan:
    """What ``data`` refunds of ``order``, given units already returned per line. 422 on over-refunds."""
    if data.currency is not None and data.currency != order.currency:
        raise field_error("currency", f"the order is in {order.currency}, not {data.currency}")
    remaining = order.remaining
    left = {line.position: line.quantity - returned.get(line.position, 0) for line in order.lines}
    if not data.lines and data.amount is None:
        if remaining <= 0:
            raise field_error("amount", "the order is already fully refunded", code="refund_exceeds_order")
        rest = [(line, left[line.position]) for line in order.lines if left[line.position] > 0]
        return ReturnPlan("full", remaining, [_resolved(line, n, line.share(n)) for line, n in rest])
    resolved: list[dict[str, Any]] = []
    total = ZERO
    for index, ref in enumerate(data.lines):
        line = _find_line(order, ref, index, left)
        if ref.quantity > left[line.position]:
            raise field_error(
                f"lines.{index}.quantity",
                f"only {left[line.position]} of {line.quantity} units of this line are left to return",
                code="exceeds_order",
            )
        left[line.position] -= ref.quantity
        share = ref.amount if ref.amount is not None else line.share(ref.quantity)
        total += share
        resolved.append(_resolved(line, ref.quantity, share))
    amount = data.amount if data.amount is not None else total
    if amount > remaining + CENT:
        raise field_error(
            "amount",
            f"refund of {amount} {order.currency} exceeds what remains of the order "
            f"({remaining} of {order.total} {order.currency})",
            code="refund_exceeds_order",
        )
    return ReturnPlan("lines" if data.lines else "amount", min(amount, max(remaining, ZERO)), resolved)


def _resolved(line: LineView, quantity: int, amount: Decimal) -> dict[str, Any]:
    return {
        "position": line.position, "line_id": line.line_id, "sku": line.sku, "quantity": quantity,
        "amount": str(amount), "is_reward": line.is_reward,
    }
