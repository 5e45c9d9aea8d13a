"""HTTP routes for products, orders and returns. Translation only: the rules live in the service modules.

Writes need ``events:write``, reads ``customers:read``. Every write is idempotent by the item's own
external id (or sku); ``Idempotency-Key`` works on top, as everywhere.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patronage.events import orders as order_service
from patronage.events import products as product_service
from patronage.events import returns as return_service
from patronage.events.group_commit import committer_for
from patronage.events.models import Order, Product, Return
from patronage.events.orders_batch import OrderWrite, write_batch
from patronage.events.repository import OrderRepository, ProductRepository, ReturnRepository
from patronage.events.schemas import (
    BatchIn,
    Ingested,
    OrderDetail,
    OrderIn,
    OrderOut,
    OrderStatus,
    Outcome,
    ProductIn,
    ProductOut,
    ReturnIn,
    ReturnOut,
    StatusChangeIn,
    StatusChangeOut,
)
from patronage.kit.batch import BatchResult, run_batch
from patronage.kit.http.route import UnitOfWorkRoute, commits_elsewhere, request_session
from patronage.kit.pagination import Page, paginate_by_id
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute)
DbSession = Annotated[Session, Depends(request_session)]
Writer = Annotated[Principal, Depends(require(Permission.EVENTS_WRITE))]
Reader = Annotated[Principal, Depends(require(Permission.CUSTOMERS_READ))]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Limit = Annotated[int | None, Query(description="page size, 1-200 (default 50)")]


def _code(response: Response, outcome: Outcome) -> None:
    response.status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK


# ---- products ----------------------------------------------------------------------------------------
@router.post("/products", response_model=Ingested[ProductOut], tags=["products"],
             responses={201: {"description": "created"}})
def upsert_product(body: ProductIn, response: Response, session: DbSession, principal: Writer) -> Ingested[ProductOut]:
    outcome, product = product_service.upsert_product(session, principal.workspace_id, body)
    _code(response, outcome)
    return Ingested(status=outcome, result=ProductOut.model_validate(product))


@router.post("/products/batch", response_model=BatchResult[ProductOut], tags=["products"])
def upsert_products(body: BatchIn, session: DbSession, principal: Writer) -> BatchResult[ProductOut]:
    def apply(s: Session, item: ProductIn) -> tuple[Outcome, ProductOut]:
        outcome, product = product_service.upsert_product(s, principal.workspace_id, item)
        return outcome, ProductOut.model_validate(product)

    return run_batch(session, body.items, ProductIn, apply)


@router.get("/products", response_model=Page[ProductOut], tags=["products"])
def list_products(
    session: DbSession, principal: Reader, *, cursor: Cursor = None, limit: Limit = None,
    category: str | None = None, active: bool | None = None,
) -> Page[ProductOut]:
    stmt = ProductRepository(session, principal.workspace_id).listing(category=category, active=active)
    rows, next_cursor = paginate_by_id(session, stmt, Product.id, cursor=cursor, limit=limit)
    return Page(items=[ProductOut.model_validate(p) for p in rows], next_cursor=next_cursor)


@router.get("/products/{sku:path}", response_model=ProductOut, tags=["products"])
def get_product(sku: str, session: DbSession, principal: Reader) -> Product:
    return product_service.get_product(session, principal.workspace_id, sku)


# ---- orders ------------------------------------------------------------------------------------------
@router.post("/orders", response_model=Ingested[OrderOut], tags=["orders"], responses={201: {"description": "created"}})
@commits_elsewhere(when=lambda settings: settings.order_group_commit)
async def upsert_order(
    body: OrderIn, request: Request, response: Response, session: DbSession, principal: Writer
) -> Ingested[OrderOut]:
    write = OrderWrite(principal.workspace_id, body, principal.actor, _ingested_order)
    result: Ingested[OrderOut]
    if request.state.commits_elsewhere:  # group commit (docs/ingestion.md#group-commit)
        committer = committer_for(request.app.state, request.app.state.db, write_batch,
                                  threads=request.app.state.settings.order_group_commit_threads)
        result = await asyncio.wrap_future(committer.submit(write))
    else:  # an Idempotency-Key, or group commit switched off: the request's own transaction
        result = await run_in_threadpool(write, session)
    _code(response, result.status)
    return result


def _ingested_order(outcome: Outcome, order: Order) -> Ingested[OrderOut]:
    return Ingested(status=outcome, result=OrderOut.model_validate(order))


@router.post("/orders/batch", response_model=BatchResult[OrderOut], tags=["orders"])
def upsert_orders(body: BatchIn, session: DbSession, principal: Writer) -> BatchResult[OrderOut]:
    def apply(s: Session, item: OrderIn) -> tuple[Outcome, OrderOut]:
        outcome, order = order_service.upsert_order(s, principal.workspace_id, item, actor=principal.actor)
        return outcome, OrderOut.model_validate(order)

    return run_batch(session, body.items, OrderIn, apply)


@router.get("/orders", response_model=Page[OrderOut], tags=["orders"])
def list_orders(
    session: DbSession, principal: Reader, *, cursor: Cursor = None, limit: Limit = None,
    customer_id: int | None = None, status: OrderStatus | None = None,
    placed_from: Annotated[datetime | None, Query(description="inclusive, timezone-aware")] = None,
    placed_to: Annotated[datetime | None, Query(description="exclusive, timezone-aware")] = None,
) -> Page[OrderOut]:
    stmt = OrderRepository(session, principal.workspace_id).listing(
        customer_id=customer_id, status=status, placed_from=placed_from, placed_to=placed_to
    )
    rows, next_cursor = paginate_by_id(session, stmt, Order.id, cursor=cursor, limit=limit)
    return Page(items=[OrderOut.model_validate(o) for o in rows], next_cursor=next_cursor)


@router.post("/orders/{external_id:path}/status", response_model=Ingested[OrderOut], tags=["orders"])
def change_order_status(
    external_id: str, body: StatusChangeIn, session: DbSession, principal: Writer
) -> Ingested[OrderOut]:
    outcome, order = order_service.change_status(
        session, principal.workspace_id, external_id, body, actor=principal.actor
    )
    return Ingested(status=outcome, result=OrderOut.model_validate(order))


@router.get("/orders/{external_id:path}", response_model=OrderDetail, tags=["orders"])
def get_order(external_id: str, session: DbSession, principal: Reader) -> OrderDetail:
    order = order_service.get_order(session, principal.workspace_id, external_id)
    history = order_service.status_history(session, principal.workspace_id, order)
    returns = ReturnRepository(session, principal.workspace_id).for_order(order.id)
    return OrderDetail(
        **OrderOut.model_validate(order).model_dump(),
        status_history=[StatusChangeOut.model_validate(h) for h in history],
        returns=[ReturnOut.model_validate(r) for r in returns],
    )


# ---- returns -----------------------------------------------------------------------------------------
@router.post("/returns", response_model=Ingested[ReturnOut], tags=["returns"],
             responses={201: {"description": "created (applied, or held until its order arrives)"}})
def record_return(body: ReturnIn, response: Response, session: DbSession, principal: Writer) -> Ingested[ReturnOut]:
    outcome, ret = return_service.record_return(session, principal.workspace_id, body, actor=principal.actor)
    _code(response, outcome)
    return Ingested(status=outcome, result=ReturnOut.model_validate(ret))


@router.post("/returns/batch", response_model=BatchResult[ReturnOut], tags=["returns"])
def record_returns(body: BatchIn, session: DbSession, principal: Writer) -> BatchResult[ReturnOut]:
    def apply(s: Session, item: ReturnIn) -> tuple[Outcome, ReturnOut]:
        outcome, ret = return_service.record_return(s, principal.workspace_id, item, actor=principal.actor)
        return outcome, ReturnOut.model_validate(ret)

    return run_batch(session, body.items, ReturnIn, apply)


@router.get("/returns", response_model=Page[ReturnOut], tags=["returns"])
def list_returns(
    session: DbSession, principal: Reader, *, cursor: Cursor = None, limit: Limit = None,
    status: Annotated[str | None, Query(pattern="^(held|applied|rejected)$")] = None,
    order_external_id: str | None = None,
) -> Page[ReturnOut]:
    stmt = ReturnRepository(session, principal.workspace_id).listing(
        status=status, order_external_id=order_external_id
    )
    rows, next_cursor = paginate_by_id(session, stmt, Return.id, cursor=cursor, limit=limit)
    return Page(items=[ReturnOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/returns/{external_id:path}", response_model=ReturnOut, tags=["returns"])
def get_return(external_id: str, session: DbSession, principal: Reader) -> Return:
    return return_service.get_return(session, principal.workspace_id, external_id)

