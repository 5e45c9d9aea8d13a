"""Builders and look-ups shared by the events tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from patronage.customers.models import Customer
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent


def order_body(external_id: str = "1001", **overrides: Any) -> dict[str, Any]:
    """Two lines (2 x 10.00, 1 x 15.00 - 5.00) + 4.90 shipping = 34.90."""
    body: dict[str, Any] = {
        "external_id": external_id,
        "customer_external_id": "c-1",
        "placed_at": "2024-03-01T10:00:00+01:00",
        "channel": "web",
        "lines": [
            {"line_id": "L1", "sku": "TEA-1", "name": "Green tea", "quantity": 2, "unit_price": "10.00"},
            {"line_id": "L2", "sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "15.00",
             "discount": "5.00"},
        ],
        "shipping_total": "4.90",
        "total": "34.90",
    }
    body.update(overrides)
    return body


def domain_events(db: Database, kind: str) -> list[DomainEvent]:
    with db.unit_of_work(read_only=True) as s:
        return list(s.scalars(select(DomainEvent).where(DomainEvent.type == kind).order_by(DomainEvent.id)))


def count(db: Database, model: Any, *where: Any) -> int:
    with db.unit_of_work(read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def customer(db: Database, external_id: str) -> Customer:
    with db.unit_of_work(read_only=True) as s:
        return s.scalars(select(Customer).where(Customer.external_id == external_id)).one()
