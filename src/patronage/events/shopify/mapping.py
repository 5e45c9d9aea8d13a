"""Pure mapping of Shopify webhook payloads (REST Admin API shapes) onto Patronage inputs.

Money: Shopify's ``total_discounts`` covers discounts allocated to lines and to shipping as well as the
rest; lines keep their own allocations, shipping is taken after its discounts, and the order keeps what
is left. Whatever Shopify's ``total_price`` holds beyond those parts (tips, duties, rounding) goes to
``other_total``, so Shopify's total is always the order's total.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from patronage.customers.schemas import CustomerUpsert
from patronage.events import rules
from patronage.events.schemas import OrderIn, ReturnIn

ZERO = Decimal(0)
CHANNELS = {
    "web": "web", "pos": "store", "shopify_draft_order": "phone", "iphone": "app", "android": "app",
    "mobile_app": "app", "facebook": "social", "instagram": "social", "buy_button": "web",
}


class Unmappable(ValueError):
    """The payload lacks what an order or refund needs (a reason fit for the receipt log)."""


def money(value: Any) -> Decimal:
    if value is None or value == "":
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise Unmappable(f"not an amount: {value!r}") from exc


def _allocations(item: dict[str, Any]) -> Decimal:
    allocations = item.get("discount_allocations")
    if allocations:
        return sum((money(a.get("amount")) for a in allocations), ZERO)
    return money(item.get("total_discount"))


def _status(order: dict[str, Any]) -> str:
    if order.get("cancelled_at"):
        return "cancelled"
    if order.get("financial_status") in ("pending", "authorized", "partially_paid", "voided"):
        return "pending"
    if order.get("fulfillment_status") == "fulfilled":
        return "shipped"
    return "paid"


def customer_profile(order: dict[str, Any]) -> CustomerUpsert | None:
    """The customer as Shopify knows them; fields Patronage refuses (an odd phone) are dropped."""
    customer = order.get("customer") or {}
    values: dict[str, Any] = {
        "external_id": str(customer["id"]) if customer.get("id") is not None else None,
        "email": customer.get("email") or order.get("email") or None,
        "first_name": customer.get("first_name") or None,
        "last_name": customer.get("last_name") or None,
        "phone": customer.get("phone") or None,
    }
    values = {k: v for k, v in values.items() if v is not None}
    if not values.get("external_id") and not values.get("email"):
        return None
    for dropped in ((), ("phone",), ("phone", "email")):
        try:
            return CustomerUpsert(**{k: v for k, v in values.items() if k not in dropped})
        except ValidationError:
            continue
    return None


def order_input(order: dict[str, Any], *, shop_domain: str, default_channel: str | None = None) -> OrderIn:
    if order.get("id") is None:
        raise Unmappable("the order has no id")
    customer = order.get("customer") or {}
    customer_id = str(customer["id"]) if customer.get("id") is not None else None
    email = customer.get("email") or order.get("email") or None
    if customer_id is None and not email:
        raise Unmappable("the order has neither a customer nor an email")
    lines: list[dict[str, Any]] = []
    subtotal = ZERO
    line_discounts = ZERO
    for item in order.get("line_items") or []:
        quantity = int(item.get("quantity") or 0)
        if quantity <= 0:
            continue  # removed by an order edit
        discount = _allocations(item)
        line_discounts += discount
        subtotal += money(item.get("price")) * quantity - discount
        lines.append({
            "line_id": str(item["id"]) if item.get("id") is not None else None,
            "sku": item.get("sku") or None,
            "name": (item.get("title") or item.get("name") or None),
            "category": item.get("product_type") or None,
            "quantity": quantity,
            "unit_price": money(item.get("price")),
            "discount": discount,
        })
    shipping = ZERO
    shipping_discounts = ZERO
    for line in order.get("shipping_lines") or []:
        price = money(line.get("price"))
        discounted = line.get("discounted_price")
        after = money(discounted) if discounted not in (None, "") else price - _allocations(line)
        shipping += after
        shipping_discounts += price - after
    taxes_included = bool(order.get("taxes_included"))
    tax = money(order.get("total_tax"))
    discount = max(money(order.get("total_discounts")) - line_discounts - shipping_discounts, ZERO)
    total = money(order.get("total_price"))
    other = total - rules.expected_total(
        subtotal, discount=discount, shipping=shipping, tax=tax, other=ZERO, taxes_included=taxes_included
    )
    codes = [c.get("code") for c in order.get("discount_codes") or [] if c.get("code")]
    source = order.get("source_name") or ""
    attributes = {
        "shopify": {
            "shop": shop_domain, "name": order.get("name"), "order_number": order.get("order_number"),
            "discount_codes": codes, "tags": order.get("tags") or "", "source_name": source or None,
        }
    }
    data = {
        "external_id": str(order["id"]),
        "customer_external_id": customer_id,
        "customer_email": email if customer_id is None else None,
        "placed_at": order.get("created_at"),
        "currency": order.get("currency"),
        "channel": CHANNELS.get(source, default_channel or ("web" if not source else "other")),
        "store": str(order["location_id"]) if order.get("location_id") is not None else None,
        "status": _status(order),
        "lines": lines,
        "subtotal": subtotal if not lines else None,
        "discount_total": discount,
        "shipping_total": shipping,
        "tax_total": tax,
        "other_total": other,
        "taxes_included": taxes_included,
        "total": total,
        "attributes": attributes,
    }
    return OrderIn.model_validate(data)


def return_input(refund: dict[str, Any]) -> ReturnIn | None:
    """The refund as a return; None when it moves neither money nor units (e.g. a note only)."""
    if refund.get("id") is None or refund.get("order_id") is None:
        raise Unmappable("the refund has no id or order_id")
    transactions = [
        t for t in refund.get("transactions") or []
        if t.get("kind") == "refund" and t.get("status") in (None, "success")
    ]
    amount = sum((money(t.get("amount")) for t in transactions), ZERO) if transactions else None
    currency = next((t.get("currency") for t in transactions if t.get("currency")), None)
    lines = [
        {"line_id": str(item["line_item_id"]), "quantity": int(item["quantity"]),
         "amount": money(item.get("subtotal"))}
        for item in refund.get("refund_line_items") or []
        if item.get("line_item_id") is not None and int(item.get("quantity") or 0) > 0
    ]
    if not lines and amount is None:
        return None
    created: datetime | str | None = refund.get("created_at") or refund.get("processed_at")
    return ReturnIn.model_validate({
        "external_id": str(refund["id"]),
        "order_external_id": str(refund["order_id"]),
        "returned_at": created,
        "reason": (refund.get("note") or None),
        "currency": currency,
        "amount": amount,
        "lines": lines,
    })
