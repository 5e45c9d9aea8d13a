"""Pure reward and coupon rules: code generation, code normalisation, availability and coupon checks,
discount amounts. No database here."""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

# Crockford-like: no 0/O, 1/I/L, and no U (fewer accidental words). 30 symbols, ~4.9 bits each.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 12 symbols ~ 59 bits: unguessable at any realistic validation rate
CUSTOM_CODE = re.compile(r"^[A-Z0-9]{3,40}$")
CENT = Decimal("0.01")


class RewardKind(StrEnum):
    FIXED_DISCOUNT = "fixed_discount"
    PERCENTAGE_DISCOUNT = "percentage_discount"
    FREE_SHIPPING = "free_shipping"
    FREE_PRODUCT = "free_product"
    EXPERIENCE = "experience"
    DONATION = "donation"
    CUSTOM = "custom"


COUPON_KINDS = frozenset({RewardKind.FIXED_DISCOUNT, RewardKind.PERCENTAGE_DISCOUNT, RewardKind.FREE_SHIPPING})
FULFILMENT_KINDS = frozenset({RewardKind.FREE_PRODUCT, RewardKind.EXPERIENCE, RewardKind.DONATION, RewardKind.CUSTOM})


class ExpiredCouponPolicy(StrEnum):
    FORFEIT = "forfeit"  # the points stay spent
    REFUND = "refund"  # an unused coupon that expires gives its points back


# ---- codes ------------------------------------------------------------------------------------------
def generate_code(length: int = CODE_LENGTH, prefix: str = "") -> str:
    """A random code from the unambiguous alphabet, drawn with ``secrets`` (a CSPRNG)."""
    if length < 8:
        raise ValueError("codes shorter than 8 symbols are guessable")
    return normalise_code(prefix) + "".join(secrets.choice(ALPHABET) for _ in range(length))


def generate_codes(
    count: int, *, length: int = CODE_LENGTH, prefix: str = "", taken: Collection[str] = ()
) -> list[str]:
    """``count`` distinct codes, none of them in ``taken``."""
    codes: set[str] = set()
    while len(codes) < count:
        code = generate_code(length, prefix)
        if code not in taken:
            codes.add(code)
    return sorted(codes)


def normalise_code(raw: str) -> str:
    """What people type to what is stored: upper case, no spaces, dashes or underscores."""
    return re.sub(r"[\s\-_]", "", raw).upper()


def format_code(code: str, group: int = 4) -> str:
    """``ABCD-EFGH-JKMN`` for display; the dashes are ignored when the code is typed back."""
    return "-".join(code[i : i + group] for i in range(0, len(code), group))


def check_custom_code(raw: str) -> str:
    code = normalise_code(raw)
    if not CUSTOM_CODE.fullmatch(code):
        raise ValueError("3-40 letters or digits (spaces and dashes are ignored)")
    return code


def discount_terms_problem(
    kind: str, value: object, currency: str | None, sku: str | None
) -> tuple[str, str] | None:
    """(field, message) when a reward's or promotion's terms do not fit its kind, else None."""
    if kind in (RewardKind.FIXED_DISCOUNT, RewardKind.PERCENTAGE_DISCOUNT) and value is None:
        return "value", f"required for {kind}"
    if kind == RewardKind.PERCENTAGE_DISCOUNT and Decimal(str(value)) > 100:
        return "value", "a percentage is at most 100"
    if kind == RewardKind.FREE_PRODUCT and not sku:
        return "sku", "required for free_product"
    if kind == RewardKind.FIXED_DISCOUNT and currency is None:
        return "currency", "required for fixed_discount"
    return None


# ---- reward availability --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RewardTerms:
    active: bool
    points_cost: int
    valid_from: datetime | None
    valid_until: datetime | None
    tier_ids: Collection[int]
    segment_ids: Collection[int]
    stock: int | None
    per_customer_limit: int | None


def unavailable_reason(
    terms: RewardTerms,
    *,
    now: datetime,
    tier_id: int | None,
    in_segments: bool,
    redeemed_by_customer: int,
    available_points: int | None = None,
) -> str | None:
    """Why this customer cannot redeem the reward now (a stable code), or None when they can.

    Checked in this order, so the reason shown is the most fundamental one.
    """
    checks = (
        (not terms.active, "inactive"),
        (terms.valid_from is not None and now < terms.valid_from, "not_yet_available"),
        (terms.valid_until is not None and now >= terms.valid_until, "no_longer_available"),
        (bool(terms.tier_ids) and tier_id not in terms.tier_ids, "tier_required"),
        (bool(terms.segment_ids) and not in_segments, "segment_required"),
        (terms.stock is not None and terms.stock <= 0, "out_of_stock"),
        (terms.per_customer_limit is not None and redeemed_by_customer >= terms.per_customer_limit, "limit_reached"),
        (available_points is not None and available_points < terms.points_cost, "insufficient_points"),
    )
    return next((reason for failed, reason in checks if failed), None)


# ---- coupons --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CouponTerms:
    status: str  # active | used | expired | void
    valid_from: datetime | None
    expires_at: datetime | None
    max_uses: int | None
    used_count: int
    per_customer_limit: int | None
    customer_id: int | None  # bound to one customer, or anybody's
    min_order_amount: Decimal | None
    currency: str | None


def coupon_problem(
    c: CouponTerms,
    *,
    now: datetime,
    order_amount: Decimal,
    currency: str | None,
    customer_id: int | None,
    uses_by_customer: int,
) -> str | None:
    """Why the coupon cannot be used on this order (a stable code), or None when it can."""
    limited = c.per_customer_limit is not None
    checks = (
        (c.status == "void", "void"),
        (c.status == "expired" or (c.expires_at is not None and now >= c.expires_at), "expired"),
        (c.valid_from is not None and now < c.valid_from, "not_yet_valid"),
        (c.status == "used" or (c.max_uses is not None and c.used_count >= c.max_uses), "used_up"),
        (c.customer_id is not None and customer_id is not None and customer_id != c.customer_id, "other_customer"),
        (limited and customer_id is None and c.customer_id is None, "customer_required"),
        (limited and uses_by_customer >= (c.per_customer_limit or 0), "customer_limit_reached"),
        (c.currency is not None and currency is not None and currency != c.currency, "currency_mismatch"),
        (c.min_order_amount is not None and order_amount < c.min_order_amount, "below_minimum_order"),
    )
    return next((reason for failed, reason in checks if failed), None)


def discount_amount(kind: str, value: Decimal | None, order_amount: Decimal) -> Decimal:
    """The money off an order of ``order_amount``: never negative, never more than the order."""
    if order_amount <= 0:
        return Decimal("0.00")
    if kind == RewardKind.FIXED_DISCOUNT:
        off = min(Decimal(value or 0), order_amount)
    elif kind == RewardKind.PERCENTAGE_DISCOUNT:
        off = min(order_amount * Decimal(value or 0) / 100, order_amount)
    else:  # free shipping and free products are priced by the shop
        off = Decimal(0)
    return max(Decimal(0), off).quantize(CENT, rounding=ROUND_HALF_UP)


def affordable(costs: Iterable[tuple[int, int]], available: int) -> list[int]:
    """Ids of rewards (id, cost) whose cost fits the balance, cheapest first."""
    return [rid for rid, cost in sorted(costs, key=lambda x: (x[1], x[0])) if cost <= available]
