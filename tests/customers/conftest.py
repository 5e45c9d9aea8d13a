"""Helpers for customer tests: orders and events written straight to the tables the events domain owns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from patronage.customers.service import record_orders_totals
from patronage.events.models import BehaviourEvent, Order, Return
from patronage.kit.db import Database
from tests.conftest import Tenant

API = "/api/v1"


def create_customer(client: TestClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = client.post(f"{API}/customers", json=fields, headers=tenant.headers)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def add_order(
    db: Database, workspace_id: int, customer_id: int, external_id: str, total: str, placed_at: datetime,
    **extra: Any,
) -> int:
    with db.unit_of_work() as session:
        order = Order(
            workspace_id=workspace_id, customer_id=customer_id, external_id=external_id, currency="EUR",
            subtotal=Decimal(total), total=Decimal(total), placed_at=placed_at, **extra,
        )
        session.add(order)
        session.flush()
        record_orders_totals(session, workspace_id, [(customer_id, placed_at, Decimal(total), 1)])
        return order.id


def add_return(
    db: Database, workspace_id: int, order_id: int, external_id: str, amount: str, at: datetime,
    reason: str | None = None,
) -> int:
    with db.unit_of_work() as session:
        order = session.get(Order, order_id)
        assert order is not None
        ret = Return(
            workspace_id=workspace_id, external_id=external_id, order_external_id=order.external_id,
            order_id=order.id, status="applied", amount=Decimal(amount), currency="EUR", returned_at=at,
            applied_at=at, reason=reason,
        )
        session.add(ret)
        session.flush()
        record_orders_totals(session, workspace_id, [(order.customer_id, None, -Decimal(amount), 0)])
        return ret.id


def add_event(
    db: Database, workspace_id: int, customer_id: int, external_id: str, type_: str, at: datetime,
    properties: dict[str, Any] | None = None,
) -> int:
    with db.unit_of_work() as session:
        event = BehaviourEvent(
            workspace_id=workspace_id, customer_id=customer_id, external_id=external_id, type=type_,
            occurred_at=at, properties=properties or {},
        )
        session.add(event)
        session.flush()
        return event.id
