"""Liability snapshots on both databases: the job stores the same figures as the live report, one row per
local day (the newest wins), and the API serves it. The dashboard card: tests/web/test_liability_card.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job
from patronage.kit.jobs.registry import REGISTRY
from patronage.kit.jobs.worker import Worker
from patronage.ledger import service as ledger
from patronage.liability import service
from patronage.liability.models import LiabilitySnapshot
from patronage.liability.tasks import SNAPSHOT_CRON
from tests.conftest import Tenant
from tests.rewards.helpers import new_customer

NOON = datetime(2025, 6, 10, 12, tzinfo=UTC)


def earn(db: Database, ws: int, customer: int, points: int, source_id: str, **kw: object) -> None:
    with db.unit_of_work() as session:
        ledger.earn(session, ws, customer, points, source_type="order", source_id=source_id, reason="t", actor="t",
                    **kw)


def snapshots(db: Database, ws: int) -> int:
    with db.unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(LiabilitySnapshot)
                                  .where(LiabilitySnapshot.workspace_id == ws)) or 0)


def test_the_job_snapshots_the_live_report_and_the_api_serves_it(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    ws, headers = tenant.workspace_id, tenant.headers
    clock.freeze(NOON)
    assert REGISTRY.periodic[service.SNAPSHOT_TASK].cron == SNAPSHOT_CRON
    put = client.put("/api/v1/loyalty/settings", headers=headers,
                     json={"cost_per_point": "0.02", "breakage_rate": "0.25", "expiry_policy": "after_earning",
                           "expiry_months": 1})
    assert put.status_code == 200, put.text
    missing = client.get("/api/v1/reports/liability/snapshot", headers=headers)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")

    a = new_customer(db, ws, email="a@example.com")
    b = new_customer(db, ws, email="b@example.com")
    earn(db, ws, a, 1000, "o-1")
    earn(db, ws, b, 400, "o-2", pending_until=NOON + timedelta(days=5))
    assert client.post("/api/v1/reports/liability/snapshot", headers=headers).status_code == 202
    assert client.post("/api/v1/reports/liability/snapshot", headers=headers).status_code == 202  # one job
    Worker(db, settings).drain()
    with db.unit_of_work(read_only=True) as session:
        ran = session.scalars(select(Job.status).where(Job.task == service.SNAPSHOT_TASK)).all()
        assert ran == ["succeeded"]

    live = client.get("/api/v1/reports/liability", headers=headers).json()
    got = client.get("/api/v1/reports/liability/snapshot", headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["day"] == "2025-06-10" and datetime.fromisoformat(body["as_of"]) == NOON
    assert body["report"] == live
    assert (live["available"]["points"], live["pending"]["points"]) == (1000, 400)
    with db.unit_of_work(read_only=True) as session:
        row = service.latest_snapshot(session, ws)
        assert row is not None
        assert (row.outstanding, row.pending, row.expiring_30_days) == (1400, 400, 1400)
        assert row.value == Decimal("28.00") and row.net_value == Decimal("21.00")
        assert row.breakage_rate == Decimal("0.25") and row.breakage_method == "configured"

    # Later the same day: the day's row is replaced, not added to; the next day gets its own row.
    clock.freeze(NOON + timedelta(hours=2))
    earn(db, ws, a, 100, "o-3")
    client.post("/api/v1/reports/liability/snapshot", headers=headers)
    Worker(db, settings).drain()
    assert snapshots(db, ws) == 1
    assert client.get("/api/v1/reports/liability/snapshot", headers=headers).json()["report"]["outstanding"] == {
        "points": 1500, "value": "30.00"}
    clock.freeze(NOON + timedelta(days=1))
    client.post("/api/v1/reports/liability/snapshot", headers=headers)
    Worker(db, settings).drain()
    assert snapshots(db, ws) == 2
    assert client.get("/api/v1/reports/liability/snapshot", headers=headers).json()["day"] == "2025-06-11"


def test_an_older_report_never_replaces_a_newer_snapshot_of_the_day(tenant: Tenant, db: Database) -> None:
    ws = tenant.workspace_id
    c = new_customer(db, ws, email="c@example.com")
    clock.freeze(NOON)
    with db.unit_of_work(read_only=True) as session:
        early = service.liability(session, ws)  # 0 points, read at noon
    earn(db, ws, c, 500, "o-1")
    clock.freeze(NOON + timedelta(minutes=30))
    with db.unit_of_work() as session:
        service.take_snapshot(session, session, ws)
    with db.unit_of_work() as session:  # the slow job that read the ledger first finishes last
        service.store_snapshot(session, ws, early, timezone="UTC")
    with db.unit_of_work(read_only=True) as session:
        row = service.latest_snapshot(session, ws)
        assert row is not None and row.outstanding == 500 and row.as_of == NOON + timedelta(minutes=30)


def test_the_snapshot_day_is_the_workspace_local_day(db: Database) -> None:
    from tests.conftest import make_tenant

    tokyo = make_tenant(db, "tokyo", timezone="Asia/Tokyo")
    clock.freeze(datetime(2025, 6, 10, 20, tzinfo=UTC))  # 05:00 on 11 June in Tokyo
    with db.unit_of_work() as session:
        row = service.take_snapshot(session, session, tokyo.workspace_id)
        assert str(row.day) == "2025-06-11"

