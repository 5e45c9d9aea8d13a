"""Ledger HTTP API: program settings, balances, history, lots, adjustments; the member's own reads."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.security import token_digest
from patronage.ledger import service
from patronage.members.models import MemberSession
from tests.conftest import Tenant
from tests.ledger.conftest import assert_doctor_ok, make_customer


def _earn(db: Database, ws: int, customer: int, n: int) -> None:
    with db.unit_of_work() as s:
        for i in range(n):
            service.earn(s, ws, customer, 10 + i, source_type="order", source_id=f"o{i}", reason="order",
                         actor="system")


def test_settings_defaults_update_and_validation(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    got = client.get("/api/v1/loyalty/settings", headers=h).json()
    assert got["expiry_policy"] == "never" and got["reversal_shortfall"] == "claw_back"
    assert got["breakage_rate"] is None
    put = client.put("/api/v1/loyalty/settings", headers=h, json={
        "expiry_policy": "end_of_period", "expiry_months": 12, "expiry_period": "year", "points_name": "stars",
        "cost_per_point": "0.005", "breakage_rate": "0.15"})
    assert put.status_code == 200, put.text
    assert put.json()["points_name"] == "stars" and put.json()["cost_per_point"] == "0.0050"
    cleared = client.put("/api/v1/loyalty/settings", headers=h, json={"breakage_rate": None})
    assert cleared.json()["breakage_rate"] is None
    bad = client.put("/api/v1/loyalty/settings", headers=h, json={"expiry_policy": "sometimes"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "expiry_policy"
    assert client.put("/api/v1/loyalty/settings", headers=h, json={"colour": "red"}).status_code == 422


def test_balance_history_pages_and_lots(client: TestClient, db: Database, tenant: Tenant) -> None:
    customer = make_customer(db, tenant.workspace_id)
    _earn(db, tenant.workspace_id, customer, 5)
    h = tenant.headers
    balance = client.get(f"/api/v1/customers/{customer}/points", headers=h).json()
    assert balance["available"] == 10 + 11 + 12 + 13 + 14 and balance["points_name"] == "points"
    page1 = client.get(f"/api/v1/customers/{customer}/points/transactions?limit=3", headers=h).json()
    page2 = client.get(f"/api/v1/customers/{customer}/points/transactions?limit=3&cursor={page1['next_cursor']}",
                       headers=h).json()
    assert [t["points"] for t in page1["items"] + page2["items"]] == [14, 13, 12, 11, 10]
    assert page2["next_cursor"] is None
    assert client.get(f"/api/v1/customers/{customer}/points/transactions?kind=spend", headers=h).json()["items"] == []
    lots = client.get(f"/api/v1/customers/{customer}/points/lots", headers=h).json()["items"]
    assert len(lots) == 5 and all(lot["remaining"] == lot["amount"] for lot in lots)
    assert client.get("/api/v1/customers/999999/points", headers=h).status_code == 404


def test_the_member_reads_only_their_own_points(client: TestClient, db: Database, tenant: Tenant) -> None:
    mine, theirs = make_customer(db, tenant.workspace_id, "me"), make_customer(db, tenant.workspace_id, "you")
    _earn(db, tenant.workspace_id, mine, 2)
    secret = "pmt_test-member-token-0123456789"
    with db.unit_of_work() as s:
        s.add(MemberSession(workspace_id=tenant.workspace_id, customer_id=mine, token_hash=token_digest(secret),
                            csrf_token="x" * 24, expires_at=utcnow() + timedelta(days=1)))
    member = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/portal/points", headers=member).json()["available"] == 21
    assert len(client.get("/api/v1/portal/points/transactions", headers=member).json()["items"]) == 2
    assert len(client.get("/api/v1/portal/points/lots", headers=member).json()["items"]) == 2
    # Staff routes are closed to members, and the portal has no way to name another customer.
    assert client.get(f"/api/v1/customers/{theirs}/points", headers=member).status_code == 403
    assert client.get("/api/v1/portal/points", headers=tenant.headers).status_code == 403
    assert_doctor_ok(db)
