from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patronage.events.models import Order, Return, ShopifyWebhookReceipt
from patronage.events.shopify import mapping
from patronage.kit.db import Database
from tests.conftest import Tenant, make_tenant
from tests.events.helpers import count, customer, domain_events

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"
HOOK = "/api/v1/integrations/shopify/webhooks"
SHOPS = "/api/v1/integrations/shopify/shops"
DOMAIN = "tea-house.myshopify.com"
SECRET = "shpss_0123456789abcdef0123456789abcdef"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def deliver(client: TestClient, topic: str, body: bytes, *, webhook_id: str, secret: str = SECRET,
            domain: str = DOMAIN) -> Any:
    """Sign like Shopify: base64 of the HMAC-SHA256 of the raw body."""
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {
        "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Shop-Domain": domain,
        "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-API-Version": "2024-01",
        "Content-Type": "application/json",
    }
    return client.post(HOOK, content=body, headers=headers)


@pytest.fixture
def shop(client: TestClient, tenant: Tenant) -> None:
    response = client.put(f"{SHOPS}/{DOMAIN}", json={"webhook_secret": SECRET}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert "webhook_secret" not in response.json() and response.json()["secret_hint"] == SECRET[-4:]


def test_order_webhook_records_the_order_once(client: TestClient, tenant: Tenant, db: Database, shop: None) -> None:
    response = deliver(client, "orders/create", fixture("orders_create.json"), webhook_id="w-1")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "created"
    order = client.get("/api/v1/orders/5923713204315", headers=tenant.headers).json()
    assert Decimal(order["total"]) == Decimal("112.61") and order["currency"] == "USD"
    assert Decimal(order["subtotal"]) == Decimal("94.00") and Decimal(order["tax_total"]) == Decimal("8.61")
    assert [(line["sku"], line["quantity"], line["line_id"]) for line in order["lines"]] == [
        ("TEA-SENCHA-100", 2, "14820118036763"), ("POT-IRON-1", 1, "14820118069531")]
    assert Decimal(order["lines"][0]["discount"]) == Decimal("4.62")
    assert order["channel"] == "web" and order["source"] == "shopify"
    assert order["placed_at"].startswith("2024-03-12T14:15:30")
    assert order["attributes"]["shopify"]["name"] == "#1042"
    c = customer(db, "7212345678901")
    assert (c.email, c.first_name, c.last_name, c.phone) == ("ana.silva@example.com", "Ana", "Silva", "+15415550123")
    assert c.orders_count == 1 and c.total_spent == Decimal("112.61")

    paid = deliver(client, "orders/paid", fixture("orders_create.json"), webhook_id="w-2")
    assert paid.json()["status"] == "unchanged"
    assert len(domain_events(db, "order.recorded")) == 1

    # A retried delivery (same webhook id) is not applied twice.
    deliver(client, "refunds/create", fixture("refunds_create.json"), webhook_id="w-r")
    again = deliver(client, "refunds/create", fixture("refunds_create.json"), webhook_id="w-r")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert count(db, ShopifyWebhookReceipt) == 3 and count(db, Return) == 1
    log = client.get(HOOK, headers=tenant.headers).json()["items"]
    assert [(r["webhook_id"], r["outcome"]) for r in log] == [
        ("w-r", "created"), ("w-2", "unchanged"), ("w-1", "created")]


def test_refunds_and_cancelled_guest_orders(client: TestClient, tenant: Tenant, db: Database, shop: None) -> None:
    early = deliver(client, "refunds/create", fixture("refunds_create.json"), webhook_id="w-r")
    assert early.json()["status"] == "created"  # held: the order is not here yet
    deliver(client, "orders/create", fixture("orders_create.json"), webhook_id="w-1")
    ret = client.get("/api/v1/returns/929361462", headers=tenant.headers).json()
    assert ret["status"] == "applied" and Decimal(ret["amount"]) == Decimal("54.80")
    assert ret["lines"][0]["sku"] == "POT-IRON-1" and ret["reason"] == "Teapot arrived cracked"
    assert customer(db, "7212345678901").total_spent == Decimal("57.81")
    assert len(domain_events(db, "return.applied")) == 1

    response = deliver(client, "orders/cancelled", fixture("orders_cancelled.json"), webhook_id="w-c")
    assert response.json()["status"] == "created", response.json()
    order = client.get("/api/v1/orders/5923713237083", headers=tenant.headers).json()
    assert (order["status"], order["channel"], order["store"]) == ("cancelled", "store", "24826418")
    cancelled = domain_events(db, "order.status_changed")
    assert [e.payload["status"] for e in cancelled] == ["cancelled"]


def test_refusals_rejections_and_shop_settings(client: TestClient, tenant: Tenant, db: Database,
                                                      shop: None) -> None:
    body = fixture("orders_create.json")
    wrong_secret = deliver(client, "orders/create", body, webhook_id="w-1", secret="not-the-secret-at-all")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["code"] == "unauthenticated"
    unknown = deliver(client, "orders/create", body, webhook_id="w-1", domain="other.myshopify.com")
    assert unknown.status_code == 401
    good = deliver(client, "orders/create", body, webhook_id="w-1")
    tampered = body.replace(b'"112.61"', b'"1.00"')
    headers = dict(good.request.headers)
    forged = client.post(HOOK, content=tampered, headers={k: v for k, v in headers.items()
                                                          if k.lower().startswith("x-shopify")})
    assert forged.status_code == 401
    assert count(db, Order) == 1

    payload = json.loads(fixture("orders_create.json"))
    payload["total_price"] = "not money"
    response = deliver(client, "orders/create", json.dumps(payload).encode(), webhook_id="w-x")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    ignored = deliver(client, "products/update", b"{}", webhook_id="w-p")
    assert ignored.json()["status"] == "ignored"
    log = client.get(HOOK, params={"outcome": "rejected"}, headers=tenant.headers).json()["items"]
    assert [r["webhook_id"] for r in log] == ["w-x"]

    assert [s["shop_domain"] for s in client.get(SHOPS, headers=tenant.headers).json()] == [DOMAIN]
    other = make_tenant(db, "globex")
    taken = client.put(f"{SHOPS}/{DOMAIN}", json={"webhook_secret": SECRET}, headers=other.headers)
    assert taken.status_code == 409
    bad = client.put(f"{SHOPS}/tea-house.example.com", json={"webhook_secret": SECRET}, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "shop_domain"
    key = client.post("/api/v1/api-keys", json={"name": "k", "scopes": ["events:write"]},
                      headers=tenant.headers).json()["key"]
    assert client.get(SHOPS, headers={"Authorization": f"Bearer {key}"}).status_code == 403
    assert client.delete(f"{SHOPS}/{DOMAIN}", headers=tenant.headers).status_code == 204
    assert deliver(client, "orders/create", fixture("orders_create.json"), webhook_id="w-9").status_code == 401


def test_mapping_puts_tips_and_duties_in_other_total() -> None:
    payload = json.loads(fixture("orders_create.json"))
    payload["total_tip_received"] = "5.00"
    payload["total_price"] = "117.61"
    order = mapping.order_input(payload, shop_domain=DOMAIN)
    assert order.other_total == Decimal("5.00") and order.total == Decimal("117.61")
    payload["taxes_included"] = True
    payload["total_price"] = "104.00"
    assert mapping.order_input(payload, shop_domain=DOMAIN).other_total == Decimal("0.00")
