"""HTTP routes of the Shopify integration: the webhook receiver (signed by Shopify, no API key) and the
per-workspace shop settings (``workspace:manage``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patronage.events.models import ShopifyShop, ShopifyWebhookReceipt
from patronage.events.repository import ShopifyReceiptRepository
from patronage.events.shopify import service
from patronage.events.shopify.schemas import ReceiptOut, ShopIn, ShopOut, WebhookResult
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page, paginate_by_id
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/integrations/shopify", tags=["shopify"])
DbSession = Annotated[Session, Depends(request_session)]
Manager = Annotated[Principal, Depends(require(Permission.WORKSPACE_MANAGE))]


def _out(shop: ShopifyShop) -> ShopOut:
    return ShopOut(
        id=shop.id, shop_domain=shop.shop_domain, active=shop.active, default_channel=shop.default_channel,
        secret_hint=shop.webhook_secret[-4:], last_webhook_at=shop.last_webhook_at, created_at=shop.created_at,
        updated_at=shop.updated_at,
    )


@router.post("/webhooks", response_model=WebhookResult, responses={401: {"description": "bad signature or shop"}})
async def receive_webhook(request: Request, session: DbSession) -> WebhookResult:
    """Shopify's webhooks (orders/create, orders/updated, orders/paid, orders/cancelled, refunds/create).

    Authenticated by ``X-Shopify-Hmac-Sha256`` over the raw body with the shop's secret; the shop is
    found by ``X-Shopify-Shop-Domain``; ``X-Shopify-Webhook-Id`` makes retries harmless.
    """
    body = await request.body()
    headers = request.headers

    def handle() -> WebhookResult:
        shop = service.authenticate(
            session, headers.get("x-shopify-shop-domain"), headers.get("x-shopify-hmac-sha256"), body
        )
        return service.handle_webhook(
            session, shop, topic=headers.get("x-shopify-topic"), webhook_id=headers.get("x-shopify-webhook-id"),
            body=body,
        )

    return await run_in_threadpool(handle)


@router.get("/shops", response_model=list[ShopOut])
def list_shops(session: DbSession, principal: Manager) -> list[ShopOut]:
    return [_out(s) for s in service.list_shops(session, principal.workspace_id)]


@router.put("/shops/{shop_domain}", response_model=ShopOut, responses={201: {"description": "connected"}})
def put_shop(shop_domain: str, body: ShopIn, response: Response, session: DbSession, principal: Manager) -> ShopOut:
    created, shop = service.put_shop(session, principal.workspace_id, shop_domain, body, actor=principal.actor)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _out(shop)


@router.delete("/shops/{shop_domain}", status_code=status.HTTP_204_NO_CONTENT)
def delete_shop(shop_domain: str, session: DbSession, principal: Manager) -> Response:
    service.delete_shop(session, principal.workspace_id, shop_domain, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks", response_model=Page[ReceiptOut])
def list_receipts(
    session: DbSession,
    principal: Manager,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int | None, Query(description="page size, 1-200 (default 50)")] = None,
    outcome: Annotated[str | None, Query(description="created, updated, unchanged, ignored or rejected")] = None,
) -> Page[ReceiptOut]:
    stmt = ShopifyReceiptRepository(session, principal.workspace_id).listing(outcome=outcome)
    rows, next_cursor = paginate_by_id(session, stmt, ShopifyWebhookReceipt.id, cursor=cursor, limit=limit)
    return Page(items=[ReceiptOut.model_validate(r) for r in rows], next_cursor=next_cursor)
