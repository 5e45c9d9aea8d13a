"""The tenancy check that stands in for the foreign keys orders and order lines do not carry to workspaces."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from patronage.events.doctor import check_order_tenancy
from patronage.events.models import Order, OrderLine
from patronage.kit.db import Database
from tests.conftest import Tenant
from tests.events.helpers import order_body


def _findings(db: Database) -> list[tuple[str, str]]:
    with db.unit_of_work(read_only=True) as s:
        return [(f.severity, f.message) for f in check_order_tenancy(s)]


def test_orders_and_lines_written_by_the_api_pass(client: TestClient, tenant: Tenant, other_tenant: Tenant,
                                                  db: Database) -> None:
    for who in (tenant, other_tenant):
        assert client.post("/api/v1/orders", json=order_body("1001"), headers=who.headers).status_code == 201
    assert [severity for severity, _ in _findings(db)] == ["ok"]


def test_a_line_or_order_in_another_workspace_is_an_error(client: TestClient, tenant: Tenant,
                                                          other_tenant: Tenant, db: Database) -> None:
    assert client.post("/api/v1/orders", json=order_body("1001"), headers=tenant.headers).status_code == 201
    with db.unit_of_work() as s:
        s.execute(update(OrderLine).where(OrderLine.position == 0).values(workspace_id=other_tenant.workspace_id))
    (finding,) = _findings(db)
    assert finding[0] == "error" and "1 order line(s) outside their order's workspace" in finding[1]

    with db.unit_of_work() as s:
        s.execute(update(Order).values(workspace_id=other_tenant.workspace_id))
    messages = [message for severity, message in _findings(db) if severity == "error"]
    assert len(messages) == 2 and "1 order(s) outside their customer's workspace" in messages[0]
