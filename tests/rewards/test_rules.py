"""Pure reward and coupon rules: codes, availability, coupon checks, discounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patronage.rewards.rules import (
    ALPHABET,
    CODE_LENGTH,
    CouponTerms,
    RewardTerms,
    check_custom_code,
    coupon_problem,
    discount_amount,
    discount_terms_problem,
    format_code,
    generate_code,
    generate_codes,
    normalise_code,
    unavailable_reason,
)

NOW = datetime(2025, 5, 1, 12, tzinfo=UTC)


def test_codes_use_only_the_unambiguous_alphabet() -> None:
    assert not set(ALPHABET) & set("01ILOU")
    assert len(set(ALPHABET)) == len(ALPHABET) == 30
    codes = [generate_code() for _ in range(2000)]
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert len(set(codes)) == len(codes)
    # Every symbol shows up: the draw is not stuck on a subset.
    assert set("".join(codes)) == set(ALPHABET)


def test_generate_codes_is_distinct_and_avoids_taken() -> None:
    taken = set(generate_codes(50))
    fresh = generate_codes(500, taken=taken, prefix="sorry")
    assert len(set(fresh)) == 500 and not set(fresh) & taken
    assert all(c.startswith("SORRY") for c in fresh)
    with pytest.raises(ValueError, match="guessable"):
        generate_code(6)


@given(st.text(alphabet=ALPHABET, min_size=8, max_size=20))
def test_formatting_round_trips(code: str) -> None:
    assert normalise_code(format_code(code)) == code
    assert normalise_code(format_code(code).lower().replace("-", " ")) == code


def test_custom_codes() -> None:
    assert check_custom_code(" summer-24 ") == "SUMMER24"
    for bad in ("ab", "sale!", "x" * 41):
        with pytest.raises(ValueError):
            check_custom_code(bad)


def terms(**over: object) -> RewardTerms:
    base: dict[str, object] = {"active": True, "points_cost": 500, "valid_from": None, "valid_until": None,
                               "tier_ids": (), "segment_ids": (), "stock": None, "per_customer_limit": None}
    return RewardTerms(**{**base, **over})  # type: ignore[arg-type]


def reason(t: RewardTerms, **kw: object) -> str | None:
    args: dict[str, object] = {"now": NOW, "tier_id": 1, "in_segments": False, "redeemed_by_customer": 0,
                               "available_points": 1000}
    return unavailable_reason(t, **{**args, **kw})  # type: ignore[arg-type]


def test_reward_availability_reasons() -> None:
    assert reason(terms()) is None
    assert reason(terms(active=False)) == "inactive"
    assert reason(terms(valid_from=NOW + timedelta(days=1))) == "not_yet_available"
    assert reason(terms(valid_until=NOW)) == "no_longer_available"
    assert reason(terms(tier_ids=[2, 3])) == "tier_required"
    assert reason(terms(tier_ids=[1])) is None
    assert reason(terms(segment_ids=[7])) == "segment_required"
    assert reason(terms(segment_ids=[7]), in_segments=True) is None
    assert reason(terms(stock=0)) == "out_of_stock"
    assert reason(terms(per_customer_limit=2), redeemed_by_customer=2) == "limit_reached"
    assert reason(terms(), available_points=499) == "insufficient_points"
    assert reason(terms(), available_points=None) is None
    # The most fundamental reason wins.
    assert reason(terms(active=False, stock=0), available_points=0) == "inactive"


def coupon(**over: object) -> CouponTerms:
    base: dict[str, object] = {"status": "active", "valid_from": None, "expires_at": None, "max_uses": 1,
                               "used_count": 0, "per_customer_limit": None, "customer_id": None,
                               "min_order_amount": None, "currency": None}
    return CouponTerms(**{**base, **over})  # type: ignore[arg-type]


def problem(c: CouponTerms, **kw: object) -> str | None:
    args: dict[str, object] = {"now": NOW, "order_amount": Decimal(50), "currency": "EUR", "customer_id": 9,
                               "uses_by_customer": 0}
    return coupon_problem(c, **{**args, **kw})  # type: ignore[arg-type]


def test_coupon_problems() -> None:
    assert problem(coupon()) is None
    assert problem(coupon(status="void")) == "void"
    assert problem(coupon(expires_at=NOW)) == "expired"
    assert problem(coupon(status="expired")) == "expired"
    assert problem(coupon(valid_from=NOW + timedelta(hours=1))) == "not_yet_valid"
    assert problem(coupon(used_count=1)) == "used_up"
    assert problem(coupon(status="used")) == "used_up"
    assert problem(coupon(max_uses=None, used_count=10**6)) is None
    assert problem(coupon(customer_id=8)) == "other_customer"
    assert problem(coupon(customer_id=8), customer_id=None) is None  # the code itself is the bearer token
    assert problem(coupon(per_customer_limit=1), customer_id=None) == "customer_required"
    assert problem(coupon(per_customer_limit=1), uses_by_customer=1) == "customer_limit_reached"
    assert problem(coupon(currency="USD")) == "currency_mismatch"
    assert problem(coupon(min_order_amount=Decimal(60))) == "below_minimum_order"


def test_discounts_never_exceed_the_order() -> None:
    assert discount_amount("fixed_discount", Decimal(10), Decimal(50)) == Decimal("10.00")
    assert discount_amount("fixed_discount", Decimal(80), Decimal(50)) == Decimal("50.00")
    assert discount_amount("percentage_discount", Decimal(15), Decimal("33.33")) == Decimal("5.00")
    assert discount_amount("percentage_discount", Decimal(100), Decimal(20)) == Decimal("20.00")
    assert discount_amount("free_shipping", None, Decimal(20)) == Decimal("0.00")
    assert discount_amount("fixed_discount", Decimal(10), Decimal(0)) == Decimal("0.00")


def test_discount_terms_must_fit_the_kind() -> None:
    assert discount_terms_problem("fixed_discount", None, "EUR", None) == ("value", "required for fixed_discount")
    assert discount_terms_problem("fixed_discount", Decimal(5), None, None) == ("currency",
                                                                                "required for fixed_discount")
    assert discount_terms_problem("percentage_discount", Decimal(101), None, None) == ("value",
                                                                                       "a percentage is at most 100")
    assert discount_terms_problem("free_product", None, None, None) == ("sku", "required for free_product")
    assert discount_terms_problem("experience", None, None, None) is None
