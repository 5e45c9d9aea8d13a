"""An order and a return for it arriving at once (PostgreSQL): the return is applied whichever commits
first, through every door an order comes in by (``events/arrival_lock.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.events import orders as order_service
from patronage.events import returns as return_service
from patronage.events.importer.orders_bulk import BulkContext, ingest_orders
from patronage.events.models import Order, Return
from patronage.events.orders_batch import OrderWrite, write_batch
from patronage.events.schemas import OrderIn, ReturnIn
from patronage.kit.db import Database
from tests.conftest import Tenant
from tests.events.helpers import order_body
from tests.racing import race

pytestmark = pytest.mark.parametrize("backend", ["postgres"])
Writer = Callable[[Session], Any]


def _return(ws: int) -> Writer:
    data = ReturnIn.model_validate({"external_id": "R-1", "order_external_id": "1001", "amount": "10.00"})
    return lambda session: return_service.record_return(session, ws, data, actor="t")[0]


def _single(ws: int) -> Writer:
    data = OrderIn.model_validate(order_body("1001"))
    return lambda session: order_service.upsert_order(session, ws, data, actor="t")[0]


def _group_commit(ws: int) -> Writer:
    writes = [OrderWrite(ws, OrderIn.model_validate(order_body(external_id)), "t", lambda outcome, _: outcome)
              for external_id in ("1000", "1001", "1002")]
    return lambda session: write_batch(session, writes)


def _bulk(ws: int) -> Writer:
    orders = [OrderIn.model_validate(order_body(external_id)) for external_id in ("1000", "1001", "1002")]
    return lambda session: [o.status for o in ingest_orders(session, BulkContext(ws, "EUR", "t"), orders)]


def _applied(db: Database, ws: int) -> tuple[str, int | None, str]:
    with db.unit_of_work(read_only=True) as session:
        ret = session.scalars(select(Return).where(Return.workspace_id == ws)).one()
        order = session.scalars(select(Order).where(Order.workspace_id == ws, Order.external_id == "1001")).one()
        return ret.status, ret.order_id and int(ret.order_id == order.id), str(order.refunded_total)


@pytest.mark.parametrize("order", [_single, _group_commit, _bulk], ids=["single", "group_commit", "bulk"])
def test_a_return_held_while_its_order_is_being_written_is_applied(
    db: Database, tenant: Tenant, order: Callable[[int], Writer]
) -> None:
    ws = tenant.workspace_id
    first, second = race(db, _return(ws), order(ws))  # the return holds; the order runs into its lock
    assert first == "created" and second is not None
    assert _applied(db, ws) == ("applied", 1, "10.0000")


@pytest.mark.parametrize("order", [_single, _group_commit, _bulk], ids=["single", "group_commit", "bulk"])
def test_a_return_sent_while_its_order_is_being_written_is_applied(
    db: Database, tenant: Tenant, order: Callable[[int], Writer]
) -> None:
    ws = tenant.workspace_id
    first, second = race(db, order(ws), _return(ws))  # the return waits for the order's transaction
    assert first is not None and second == "created"
    assert _applied(db, ws) == ("applied", 1, "10.0000")
