"""Shopify shops (per-workspace settings) and webhook handling. Never commits.

A webhook is trusted only when ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body under
the shop's secret. Its ``X-Shopify-Webhook-Id`` is claimed first (a unique row), so a retried delivery
is answered ``duplicate`` without being applied twice. A payload that cannot be applied is answered 200
with ``rejected`` and kept in the receipt log: Shopify would otherwise retry it for two days and then
remove the subscription.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.events import orders as order_service
from patronage.events import returns as return_service
from patronage.events.customer_link import resolve_customer
from patronage.events.models import ShopifyShop, ShopifyWebhookReceipt
from patronage.events.repository import ShopifyReceiptRepository, ShopifyShopRepository, find_shop_by_domain
from patronage.events.shopify import mapping
from patronage.events.shopify.schemas import SHOP_DOMAIN, TOPICS, ShopIn, WebhookResult, WebhookStatus
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound, PatronageError, Unauthenticated, field_error
from patronage.kit.http.problems import validation_problem
from patronage.kit.upsert import insert_ignore


class ShopTaken(Conflict):
    code = "shop_taken"
    title = "This Shopify shop is connected to another workspace"


def normalise_domain(raw: str) -> str:
    domain = raw.strip().lower()
    if not SHOP_DOMAIN.fullmatch(domain):
        raise field_error("shop_domain", "must be the shop's myshopify.com domain, e.g. acme.myshopify.com")
    return domain


def signature(secret: str, body: bytes) -> str:
    """What Shopify sends in ``X-Shopify-Hmac-Sha256`` for ``body``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# ---- settings ----------------------------------------------------------------------------------------
def list_shops(session: Session, workspace_id: int) -> list[ShopifyShop]:
    return ShopifyShopRepository(session, workspace_id).all()


def put_shop(
    session: Session, workspace_id: int, shop_domain: str, data: ShopIn, *, actor: str
) -> tuple[bool, ShopifyShop]:
    """Connect a shop or change its settings; (created?, shop)."""
    domain = normalise_domain(shop_domain)
    owner = find_shop_by_domain(session, domain)
    if owner is not None and owner.workspace_id != workspace_id:
        raise ShopTaken(f"{domain} already sends its webhooks to another workspace; disconnect it there first")
    repo = ShopifyShopRepository(session, workspace_id)
    values = {"webhook_secret": data.webhook_secret, "active": data.active, "default_channel": data.default_channel}
    if owner is None:
        shop = repo.new(shop_domain=domain, **values)
        created = True
    else:
        shop, created = owner, False
        for key, value in values.items():
            setattr(shop, key, value)
        session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="shopify.shop_saved", subject_type="shopify_shop",
          subject_id=shop.id, data={"shop_domain": domain, "active": data.active})
    return created, shop


def delete_shop(session: Session, workspace_id: int, shop_domain: str, *, actor: str) -> None:
    shop = ShopifyShopRepository(session, workspace_id).by_domain(shop_domain.strip().lower())
    if shop is None:
        raise NotFound(f"shop {shop_domain!r} is not connected")
    session.delete(shop)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="shopify.shop_deleted",
          subject_type="shopify_shop", subject_id=shop.id, data={"shop_domain": shop.shop_domain})


# ---- webhooks ----------------------------------------------------------------------------------------
def authenticate(session: Session, shop_domain: str | None, hmac_header: str | None, body: bytes) -> ShopifyShop:
    """The connected, active shop that signed ``body``; 401 otherwise (no hint which check failed)."""
    domain = (shop_domain or "").strip().lower()
    shop = find_shop_by_domain(session, domain) if domain else None
    expected = signature(shop.webhook_secret, body) if shop is not None else signature("-", body)
    valid = hmac.compare_digest(expected.encode(), (hmac_header or "").strip().encode())
    if shop is None or not shop.active or not valid:
        raise Unauthenticated("webhook signature or shop domain not recognised")
    return shop


def handle_webhook(
    session: Session, shop: ShopifyShop, *, topic: str | None, webhook_id: str | None, body: bytes
) -> WebhookResult:
    if not webhook_id:
        raise field_error("X-Shopify-Webhook-Id", "missing; Shopify sends it with every webhook", code="missing")
    topic = (topic or "").strip()
    receipt_table: Table = ShopifyWebhookReceipt.__table__  # type: ignore[assignment]
    claimed = insert_ignore(
        session, receipt_table,
        [{"workspace_id": shop.workspace_id, "webhook_id": webhook_id[:100], "shop_domain": shop.shop_domain,
          "topic": topic[:60], "outcome": "processing", "received_at": utcnow(), "created_at": utcnow(),
          "updated_at": utcnow()}],
        conflict=["workspace_id", "webhook_id"], returning=["id"],
    )
    if not claimed:
        return WebhookResult(status="duplicate", topic=topic)
    shop.last_webhook_at = utcnow()
    result = _dispatch(session, shop, topic, body)
    receipt = ShopifyReceiptRepository(session, shop.workspace_id).get(claimed[0].id)
    assert receipt is not None
    receipt.outcome, receipt.detail = result.status, (result.detail or None) and result.detail[:1000]
    session.flush()
    return result


def _dispatch(session: Session, shop: ShopifyShop, topic: str, body: bytes) -> WebhookResult:
    if topic not in TOPICS:
        return WebhookResult(status="ignored", topic=topic, detail="topic not handled")
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise mapping.Unmappable("the body is not a JSON object")
        with session.begin_nested():
            status, detail = _apply(session, shop, topic, payload)
        return WebhookResult(status=status, topic=topic, detail=detail)
    except (ValueError, mapping.Unmappable) as exc:
        if isinstance(exc, ValidationError):
            problem = validation_problem([dict(e) for e in exc.errors()])
            return WebhookResult(status="rejected", topic=topic, detail=problem.detail)
        return WebhookResult(status="rejected", topic=topic, detail=str(exc))
    except PatronageError as exc:
        return WebhookResult(status="rejected", topic=topic, detail=exc.detail)


def _apply(
    session: Session, shop: ShopifyShop, topic: str, payload: dict[str, Any]
) -> tuple[WebhookStatus, str | None]:
    ws, actor = shop.workspace_id, f"shopify:{shop.shop_domain}"
    if topic == "refunds/create":
        data = mapping.return_input(payload)
        if data is None:
            return "ignored", "the refund moves neither money nor items"
        status, ret = return_service.record_return(session, ws, data, actor=actor, source="shopify")
        return status, f"return {ret.external_id} {ret.status}"
    order = mapping.order_input(payload, shop_domain=shop.shop_domain, default_channel=shop.default_channel)
    profile = mapping.customer_profile(payload)
    if profile is not None:
        resolve_customer(session, ws, external_id=order.customer_external_id, email=order.customer_email,
                         actor=actor, profile=profile)
    status, recorded = order_service.upsert_order(session, ws, order, actor=actor, source="shopify")
    return status, f"order {recorded.external_id} {recorded.status}"
