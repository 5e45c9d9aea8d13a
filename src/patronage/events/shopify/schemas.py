"""Bodies of the Shopify integration settings and webhook endpoints."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from patronage.events.schemas import Channel
from patronage.kit.schemas import Input, Output

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}\.myshopify\.com$")
TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled", "refunds/create")
WebhookStatus = Literal["created", "updated", "unchanged", "ignored", "rejected", "duplicate"]


class ShopIn(Input):
    webhook_secret: str = Field(
        min_length=16, max_length=255,
        description="the app's client secret (or the store's webhook signing secret); never returned",
    )
    active: bool = True
    default_channel: Channel | None = Field(None, description="channel for orders whose source Shopify leaves open")


class ShopOut(Output):
    id: int
    shop_domain: str
    active: bool
    default_channel: str | None
    secret_hint: str = Field(description="the secret's last 4 characters")
    last_webhook_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookResult(BaseModel):
    status: WebhookStatus
    topic: str
    detail: str | None = None


class ReceiptOut(Output):
    id: int
    webhook_id: str
    shop_domain: str
    topic: str
    outcome: str
    detail: str | None
    received_at: datetime
