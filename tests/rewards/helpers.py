"""Shared set-up for the loyalty engine's database tests (tiers, rewards, referrals, liability)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.config import Settings
from patronage.customers.models import Customer, CustomerIdentity
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent
from patronage.kit.jobs.worker import Worker
from patronage.kit.security import new_token, token_digest
from patronage.ledger import service as ledger
from patronage.members.models import MemberSession
from patronage.workspaces.auth import MEMBER_TOKEN_PREFIX
from tests.conftest import Tenant


def new_customer(db: Database, workspace_id: int, *, email: str | None = None, phone: str | None = None,
                 external_id: str | None = None, **attributes: Any) -> int:
    with db.unit_of_work() as session:
        customer = Customer(workspace_id=workspace_id, email=email, phone=phone, external_id=external_id,
                            attributes=attributes)
        session.add(customer)
        session.flush()
        for kind, value in (("email", email), ("phone", phone), ("external_id", external_id)):
            if value:
                session.add(CustomerIdentity(workspace_id=workspace_id, customer_id=customer.id, kind=kind,
                                             value=value))
        return customer.id


def give_points(db: Database, workspace_id: int, customer_id: int, points: int, source_id: str) -> None:
    with db.unit_of_work() as session:
        ledger.earn(session, workspace_id, customer_id, points, source_type="test", source_id=source_id,
                    reason="test", actor="test")


def available(db: Database, workspace_id: int, customer_id: int) -> int:
    with db.unit_of_work(read_only=True) as session:
        return ledger.balance(session, workspace_id, customer_id).available


def drain(db: Database, settings: Settings) -> int:
    """Run every due job (domain event handlers included) until none is left."""
    return Worker(db, settings, name="test-worker").drain()


def post_order(client: TestClient, tenant: Tenant, external_id: str, customer: str, total: str,
               placed_at: datetime, **extra: Any) -> dict[str, Any]:
    body = {"external_id": external_id, "customer_external_id": customer, "placed_at": placed_at.isoformat(),
            "lines": [{"line_id": "1", "sku": "SKU-1", "unit_price": total, "quantity": 1}], **extra}
    response = client.post("/api/v1/orders", json=body, headers=tenant.headers)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def member_headers(db: Database, workspace_id: int, customer_id: int) -> dict[str, str]:
    """A signed-in member's bearer token (what the magic-link exchange hands out)."""
    secret = new_token(MEMBER_TOKEN_PREFIX)
    with db.unit_of_work() as session:
        session.add(MemberSession(workspace_id=workspace_id, customer_id=customer_id, token_hash=token_digest(secret),
                                  csrf_token="x" * 24, expires_at=utcnow() + timedelta(days=1)))
    return {"Authorization": f"Bearer {secret}"}


def events(db: Database, workspace_id: int, event_type: str) -> list[dict[str, Any]]:
    with db.unit_of_work(read_only=True) as session:
        stmt = select(DomainEvent.payload).where(DomainEvent.workspace_id == workspace_id,
                                                 DomainEvent.type == event_type).order_by(DomainEvent.id)
        return [dict(p) for p in session.scalars(stmt)]


def money(value: object) -> Decimal:
    return Decimal(str(value))
