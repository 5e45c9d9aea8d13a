"""The built-in behavioural event types and the JSON Schemas of their properties.

Built-in types validate the properties they declare and accept extra ones (a client may send more than
we know about). Workspaces add their own types with their own schemas (``EventType`` rows); those
cannot reuse a built-in name. The list is documented in docs/ingestion.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_STR = {"type": "string", "maxLength": 2000}
_ID = {"type": "string", "maxLength": 200}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": True}


@dataclass(frozen=True)
class BuiltinType:
    name: str
    description: str
    schema: dict[str, Any]


BUILTIN_TYPES: dict[str, BuiltinType] = {
    t.name: t
    for t in (
        BuiltinType("page_view", "A page of the shop was viewed.",
                    _object(["url"], url=_STR, title=_STR, referrer=_STR)),
        BuiltinType("product_view", "A product page was viewed.",
                    _object(["sku"], sku=_ID, name=_STR, category=_STR, price={"type": "number", "minimum": 0})),
        BuiltinType("add_to_cart", "A product went into the cart.",
                    _object(["sku"], sku=_ID, quantity={"type": "integer", "minimum": 1},
                            price={"type": "number", "minimum": 0})),
        BuiltinType("search", "The customer searched the shop.", _object(["query"], query=_STR)),
        BuiltinType("wishlist_add", "A product was added to a wishlist.", _object(["sku"], sku=_ID)),
        BuiltinType("app_open", "The mobile app was opened.",
                    _object([], platform={"enum": ["ios", "android", "web", "other"]}, app_version=_ID)),
        BuiltinType("login", "The customer signed in to the shop.", _object([], method=_ID)),
        BuiltinType("email_open", "A marketing email was opened.",
                    _object([], campaign_id=_ID, message_id=_ID)),
        BuiltinType("email_click", "A link in a marketing email was clicked.",
                    _object(["url"], url=_STR, campaign_id=_ID, message_id=_ID)),
        BuiltinType("newsletter_signup", "The customer subscribed to a newsletter.", _object([], list=_ID)),
        BuiltinType("review_posted", "The customer reviewed a product or the shop.",
                    _object(["rating"], rating={"type": "integer", "minimum": 1, "maximum": 5}, sku=_ID,
                            review_id=_ID, title=_STR, has_media={"type": "boolean"})),
        BuiltinType("social_share", "The customer shared something on a social network.",
                    _object(["network"], network=_ID, url=_STR)),
        BuiltinType("support_contact", "The customer contacted support.",
                    _object([], channel={"enum": ["email", "chat", "phone", "social", "store", "other"]},
                            topic=_ID, ticket_id=_ID)),
        BuiltinType("referral_signup", "Someone the customer referred signed up.",
                    _object([], referral_code=_ID, referred_customer_external_id=_ID)),
        BuiltinType("profile_completed", "The customer completed their profile.", _object([])),
        BuiltinType("store_visit", "The customer visited a physical store.", _object([], store=_ID)),
    )
}
