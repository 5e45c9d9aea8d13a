"""Money and points arithmetic of earning, pure: net paid amounts per line, rounding, exact allocation.

Net paid: a line's net (quantity x unit price - line discount) minus its share of the order-level
discounts. Order-level discounts are the order's ``discount_total`` plus every negative reward line (a
voucher or points discount line); they are prorated over the earning lines by their net. Reward lines
and lines with no positive net never earn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Literal

ZERO = Decimal(0)
PLACES = Decimal("0.0001")  # the Money column's precision
ORDER_KEY = "_order"  # the one pseudo-line of an order recorded without lines

Rounding = Literal["floor", "half_up", "ceil"]
ROUNDINGS: dict[str, str] = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceil": ROUND_CEILING}


@dataclass(frozen=True)
class Line:
    key: str  # the line's position as text: returns name lines by position
    sku: str | None
    category: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal = ZERO
    is_reward: bool = False

    @property
    def net(self) -> Decimal:
        return self.quantity * self.unit_price - self.discount


def round_points(value: Decimal, rounding: str) -> int:
    return int(value.to_integral_value(rounding=ROUNDINGS[rounding]))


def allocate(total: int, weights: Mapping[str, Decimal]) -> dict[str, int]:
    """Split ``total`` integer points over keys in proportion to ``weights`` (largest remainder, ties by
    key order): the parts always add up to ``total`` exactly."""
    if len(weights) == 1:  # the common single-line order
        ((key, weight),) = weights.items()
        return {key: total} if weight > 0 or total == 0 else {}
    positive = {k: w for k, w in weights.items() if w > 0}
    if total == 0 or not positive:
        return {k: 0 for k in weights} if total == 0 else {}
    if len(positive) == 1:
        return {k: (total if k in positive else 0) for k in weights}
    whole = sum(positive.values(), ZERO)
    exact = {k: total * w / whole for k, w in positive.items()}
    parts = {k: int(v.to_integral_value(rounding=ROUND_FLOOR)) for k, v in exact.items()}
    left = total - sum(parts.values())
    order = {k: i for i, k in enumerate(positive)}
    by_remainder = sorted(positive, key=lambda k: (-(exact[k] - parts[k]), order[k]))
    for k in by_remainder[:left]:
        parts[k] += 1
    return {k: parts.get(k, 0) for k in weights}


def prorate_money(amount: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Split a money ``amount`` over keys by weight, to 4 decimals, adding up exactly."""
    positive = {k: w for k, w in weights.items() if w > 0}
    if not positive or amount == 0:
        return {k: ZERO for k in weights}
    units = int((amount / PLACES).to_integral_value(rounding=ROUND_HALF_UP))
    return {k: v * PLACES for k, v in allocate(units, positive).items()}


def net_paid(lines: Sequence[Line], discount_total: Decimal, subtotal: Decimal) -> dict[str, Decimal]:
    """What the customer paid for each earning line after all discounts; ``{ORDER_KEY: ...}`` for an
    order without lines. Never negative; reward lines and non-positive lines are absent."""
    if not lines:
        return {ORDER_KEY: max(subtotal - discount_total, ZERO)}
    if len(lines) == 1 and not discount_total:
        line = lines[0]
        return {line.key: line.net} if not line.is_reward and line.net > 0 else {}
    earning = {line.key: line.net for line in lines if not line.is_reward and line.net > 0}
    pool = discount_total + sum((-line.net for line in lines if line.net < 0), ZERO)
    if pool <= 0 or not earning:
        return earning
    base = sum(earning.values(), ZERO)
    if pool >= base:
        return {k: ZERO for k in earning}
    shares = prorate_money(pool, earning)
    return {k: max(v - shares[k], ZERO) for k, v in earning.items()}
