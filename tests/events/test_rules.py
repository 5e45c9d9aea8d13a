"""Pure rules: no database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from patronage.events import rules
from patronage.events.schemas import OrderIn, ReturnIn, content_hash
from patronage.kit.errors import ValidationFailed

D = Decimal


def order(**fields: Any) -> OrderIn:
    base: dict[str, Any] = {"external_id": "o", "customer_external_id": "c", "placed_at": "2024-01-01T00:00:00Z",
                            "lines": [{"sku": "A", "quantity": 3, "unit_price": "10", "discount": "3"}]}
    return OrderIn.model_validate({**base, **fields})


def view(total: str = "27", refunded: str = "0") -> rules.OrderView:
    lines = [rules.LineView(0, "L1", "A", 3, D(10), D(3), False), rules.LineView(1, "L2", "B", 1, D(0), D(0), True)]
    return rules.OrderView("EUR", D(total), D(refunded), lines)


def field_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> str:
    return str(exc.value.extra["errors"][0]["field"])


def test_totals_are_computed_or_checked_to_the_cent() -> None:
    assert rules.check_order(order()) == rules.Totals(D(27), D(27))
    assert rules.check_order(order(total="27.009")).total == D("27.009")
    with pytest.raises(ValidationFailed) as exc:
        rules.check_order(order(total="27.02"))
    assert field_of(exc) == "total"
    assert rules.check_order(order(tax_total="5", taxes_included=True, total="27")).total == D(27)
    assert rules.check_order(order(tax_total="5", other_total="1.5", shipping_total="2")).total == D("35.5")
    with pytest.raises(ValidationFailed) as exc:
        rules.check_order(order(lines=[], total="5"))
    assert field_of(exc) == "subtotal"
    with pytest.raises(ValidationFailed) as exc:
        rules.check_order(order(lines=[{"quantity": 1, "unit_price": "1", "discount": "2"}]))
    assert field_of(exc) == "lines.0.discount"


def test_status_moves() -> None:
    assert rules.upsert_moves_status("paid", "shipped")
    assert not rules.upsert_moves_status("delivered", "paid")
    assert not rules.upsert_moves_status("cancelled", "delivered")
    assert rules.upsert_moves_status("delivered", "cancelled")
    assert not rules.check_status_change("shipped", "shipped")
    assert rules.check_status_change("delivered", "delayed")
    with pytest.raises(ValidationFailed):
        rules.check_status_change("cancelled", "paid")


def ret(**fields: Any) -> ReturnIn:
    return ReturnIn.model_validate({"external_id": "r", "order_external_id": "o", **fields})


def test_return_shares_and_limits() -> None:
    plan = rules.plan_return(view(), ret(lines=[{"line_id": "L1", "quantity": 1}]), {})
    assert plan.kind == "lines" and plan.amount == D(9)
    assert plan.lines[0]["position"] == 0 and D(plan.lines[0]["amount"]) == D(9)
    done = rules.returned_quantities([plan.lines])
    assert done == {0: 1}
    with pytest.raises(ValidationFailed) as exc:
        rules.plan_return(view(), ret(lines=[{"sku": "A", "quantity": 3}]), done)
    assert field_of(exc) == "lines.0.quantity"
    full = rules.plan_return(view(refunded="9"), ret(), done)
    assert full.kind == "full" and full.amount == D(18) and [line["quantity"] for line in full.lines] == [2, 1]
    with pytest.raises(ValidationFailed) as exc:
        rules.plan_return(view(refunded="20"), ret(amount="7.02"), {})
    assert field_of(exc) == "amount"
    assert rules.plan_return(view(refunded="20"), ret(amount="7.005"), {}).amount == D(7)  # within a cent
    with pytest.raises(ValidationFailed) as exc:
        rules.plan_return(view(), ret(currency="USD"), {})
    assert field_of(exc) == "currency"


def test_content_hash_is_stable_and_sensitive() -> None:
    assert content_hash(order()) == content_hash(order())
    assert content_hash(order()) != content_hash(order(store="Porto"))
