"""Extract -> compute -> store on SQLite and PostgreSQL, then the API, CSV export, goals and the CLI report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patronage.analytics import service
from patronage.analytics.extract import open_store
from patronage.analytics.models import AnalyticsRefresh, CustomerScores
from patronage.analytics.settings import AnalyticsSettings
from patronage.customers.models import Customer
from patronage.events.models import Order
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job
from patronage.workspaces.models import Workspace
from tests.conftest import Tenant

SETTINGS = AnalyticsSettings(dir="", active_window_days=31, kpi_periods=["month"], cohort_periods=["month"])
AS_OF = date(2024, 4, 30)
# (customer, placed at UTC, total): the last one is 2024-04-01 00:30 in Lisbon (summer time since Mar 31).
ORDERS = [
    ("a", datetime(2024, 1, 5, 12, tzinfo=UTC), "100"), ("a", datetime(2024, 2, 5, 12, tzinfo=UTC), "50"),
    ("b", datetime(2024, 1, 20, 12, tzinfo=UTC), "30"), ("c", datetime(2024, 2, 1, 12, tzinfo=UTC), "20"),
    ("c", datetime(2024, 3, 3, 12, tzinfo=UTC), "25"), ("a", datetime(2024, 3, 31, 23, 30, tzinfo=UTC), "10"),
]


def seed(db: Database, ws: int) -> dict[str, int]:
    ids: dict[str, int] = {}
    with db.unit_of_work() as session:
        session.get(Workspace, ws).timezone = "Europe/Lisbon"  # type: ignore[union-attr]
        for name in "abcd":
            customer = Customer(workspace_id=ws, external_id=name, acquisition_channel="web")
            session.add(customer)
            session.flush()
            ids[name] = customer.id
        for i, (name, placed, total) in enumerate(ORDERS):
            session.add(Order(workspace_id=ws, external_id=f"o{i}", customer_id=ids[name], currency="EUR",
                              subtotal=Decimal(total), total=Decimal(total), placed_at=placed, channel="web"))
    return ids


def test_refresh_then_read_through_the_api(client: TestClient, db: Database, tenant: Tenant) -> None:
    ws, h = tenant.workspace_id, tenant.headers
    clock.freeze(datetime(2024, 5, 1, 8, tzinfo=UTC))
    ids = seed(db, ws)
    store = open_store(None)
    refresh_id = service.run_refresh(db, ws, store=store, settings=SETTINGS, as_of=AS_OF)
    status = client.get("/api/v1/analytics/refresh", headers=h).json()
    assert status["id"] == refresh_id and status["status"] == "succeeded"
    assert status["rows_extracted"]["orders"] == 6

    orders = client.get("/api/v1/analytics/kpis", params={"kpi": "orders", "period": "month"}, headers=h)
    assert orders.status_code == 200, orders.text
    body = orders.json()
    assert body["periods"] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert body["series"][0]["values"] == [2, 2, 1, 1]  # the 23:30 UTC order is April locally
    window = client.get("/api/v1/analytics/kpis", headers=h,
                        params={"kpi": "revenue", "from": "2024-02-10", "to": "2024-03-31"}).json()
    assert window["periods"] == ["2024-02", "2024-03"] and window["series"][0]["values"] == [70, 25]
    csv = client.get("/api/v1/analytics/kpis", params={"kpi": "average_order_value", "format": "csv"}, headers=h)
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "group,period,start,average_order_value,partial"
    nps = client.get("/api/v1/analytics/kpis", params={"kpi": "nps"}, headers=h).json()
    assert nps["note"] == "not available until feedback" and nps["series"][0]["values"][0] is None
    by_channel = client.get("/api/v1/analytics/kpis", params={"kpi": "orders", "breakdown": "channel"},
                            headers=h).json()
    assert [s["group"] for s in by_channel["series"]] == ["web"]

    cohorts = client.get("/api/v1/analytics/cohorts", params={"relative": "false"}, headers=h).json()
    assert cohorts["cohorts"][0]["values"] == [2, 1, 0, 1]  # January: a and b; a again in Feb and Apr
    after = client.get("/api/v1/analytics/cohorts", params={"mode": "in_or_after"}, headers=h).json()
    assert after["cohorts"][0]["values"] == [1.0, 0.5, 0.5, 0.5]
    cohort_csv = client.get("/api/v1/analytics/cohorts", headers={**h, "Accept": "text/csv"})
    assert cohort_csv.text.startswith("cohort,size,p0,p1")
    assert client.get("/api/v1/analytics/lifecycle", headers=h).json()["customers"]["new"] == [2, 1, 0, 0]
    funnel = client.get("/api/v1/analytics/funnel", headers=h).json()["stages"]
    assert [s["customers"] for s in funnel][:3] == [4, 3, 2]
    assert client.get("/api/v1/analytics/program-impact", headers=h).status_code == 200
    rfm = client.get("/api/v1/analytics/rfm", headers=h).json()
    assert sum(c["customers"] for c in rfm["grid"]) == 3
    assert client.get("/api/v1/analytics/kpis/catalog", headers=h).status_code == 200

    with db.unit_of_work(read_only=True) as session:
        scores = {s.customer_id: s for s in session.scalars(select(CustomerScores))}
    assert set(scores) == {ids["a"], ids["b"], ids["c"]}
    assert scores[ids["a"]].rfm_segment is not None and scores[ids["a"]].p_alive is None  # too little to fit

    # Incremental: a refund and a new order are picked up by the next refreshes of the same store.
    clock.advance(timedelta(hours=1))
    with db.unit_of_work() as session:
        first = session.scalars(select(Order).where(Order.external_id == "o0")).one()
        first.refunded_total = Decimal(40)
    service.run_refresh(db, ws, store=store, settings=SETTINGS, as_of=AS_OF)
    clock.advance(timedelta(hours=1))
    with db.unit_of_work() as session:
        session.add(Order(workspace_id=ws, external_id="o9", customer_id=ids["d"], currency="EUR",
                          subtotal=Decimal(7), total=Decimal(7), placed_at=datetime(2024, 4, 10, tzinfo=UTC)))
    service.run_refresh(db, ws, store=store, settings=SETTINGS, as_of=AS_OF)
    revenue = client.get("/api/v1/analytics/kpis", params={"kpi": "revenue"}, headers=h).json()
    assert revenue["series"][0]["values"] == [90, 70, 25, 17]
    status = client.get("/api/v1/analytics/refresh", headers=h).json()
    # Copied: the new order, and the refunded one again (changed within the overlap of the watermark).
    assert status["rows_extracted"]["orders"] == 2


def test_refresh_request_enqueues_one_job(client: TestClient, db: Database, tenant: Tenant) -> None:
    first = client.post("/api/v1/analytics/refresh", json={"full": True}, headers=tenant.headers)
    again = client.post("/api/v1/analytics/refresh", headers=tenant.headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and first.json()["status"] == "queued"
    with db.unit_of_work(read_only=True) as session:
        jobs = session.scalar(select(func.count()).select_from(Job).where(Job.task == service.REFRESH_TASK))
        assert jobs == 1
    assert client.get("/api/v1/analytics/kpis", params={"kpi": "orders"}, headers=tenant.headers).status_code == 404


def test_refresh_job_runs_the_refresh(db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    from patronage.analytics import tasks
    from patronage.kit.jobs import JobContext

    seed(db, tenant.workspace_id)
    monkeypatch.setattr(service, "get_analytics_settings", lambda: SETTINGS)
    with db.unit_of_work() as session:
        refresh = service.request_refresh(session, tenant.workspace_id)
        refresh_id = refresh.id
    session = db.sessions()
    try:
        tasks.refresh(session, JobContext(1, service.REFRESH_TASK, tenant.workspace_id,
                                          {"refresh_id": refresh_id}, 1, 3, datetime.now(UTC)))
    finally:
        session.close()
    with db.unit_of_work(read_only=True) as session:
        assert session.get(AnalyticsRefresh, refresh_id).status == "succeeded"  # type: ignore[union-attr]


def test_goals(client: TestClient, db: Database, tenant: Tenant) -> None:
    h = tenant.headers
    seed(db, tenant.workspace_id)
    service.run_refresh(db, tenant.workspace_id, store=open_store(None), settings=SETTINGS, as_of=AS_OF)
    body = {"name": "More repeat buyers", "kpi": "repeat_purchase_rate", "target": 0.9, "deadline": "2024-08-31"}
    created = client.post("/api/v1/analytics/goals", json=body, headers=h)
    assert created.status_code == 201, created.text
    goal = created.json()
    progress = goal["progress"]
    # Repeat purchase rate by month: 0/2, 1/3, 2/3, 2/3 (April is partial: as of Apr 30 it is not).
    assert progress["current"] == pytest.approx(2 / 3) and progress["current_period"] == "2024-04"
    assert progress["baseline"] == pytest.approx(2 / 3) and progress["percent_of_way"] == 0
    assert progress["forecast_method"] == "holt_linear" and progress["periods_to_deadline"] == 4
    assert progress["forecast_at_deadline"] is not None and progress["on_track"] in (True, False)
    patched = client.patch(f"/api/v1/analytics/goals/{goal['id']}", json={"target": 0.5}, headers=h).json()
    assert patched["progress"]["achieved"] is True
    assert len(client.get("/api/v1/analytics/goals", headers=h).json()) == 1
    bad = client.post("/api/v1/analytics/goals", json={**body, "breakdown": "channel"}, headers=h)
    assert bad.status_code == 422
    assert client.delete(f"/api/v1/analytics/goals/{goal['id']}", headers=h).status_code == 204


def test_extract_reads_every_column_kind(db: Database, tenant: Tenant) -> None:
    """Raw driver values (SQLite text timestamps and 0/1 booleans, PostgreSQL NUMERIC) land typed."""
    from patronage.analytics.extract import extract
    from patronage.events.models import BehaviourEvent, OrderLine, Return

    ws = tenant.workspace_id
    ids = seed(db, ws)
    with db.unit_of_work() as session:
        order = session.scalars(select(Order).where(Order.external_id == "o5")).one()
        session.add(OrderLine(workspace_id=ws, order_id=order.id, position=1, sku="S1", category="tea", quantity=3,
                              unit_price=Decimal("2.5"), discount=Decimal("0.25"), is_reward=True))
        session.add(Return(workspace_id=ws, external_id="r1", order_external_id="o5", order_id=order.id,
                           status="applied", amount=Decimal("1.1"),
                           returned_at=datetime(2024, 4, 2, 22, 30, tzinfo=UTC)))
        session.add(BehaviourEvent(workspace_id=ws, external_id="e1", customer_id=ids["b"], type="review_posted",
                                   occurred_at=datetime(2024, 1, 31, 23, 59, tzinfo=UTC)))
    store = open_store(None)
    stats = extract(db, store, ws, "Europe/Lisbon")
    assert stats.rows["orders"] == 6 and stats.rows["order_lines"] == 1 and stats.rows["returns"] == 1
    from patronage.analytics.calendar import day_number

    line = store.execute("SELECT sku, category, quantity, amount, is_reward FROM order_lines").fetchall()
    assert line == [("S1", "tea", 3, 7.25, True)]
    ret = store.execute("SELECT amount, status, dnum FROM returns").fetchall()
    assert ret == [(1.1, "applied", day_number(date(2024, 4, 2)))]  # 23:30 in Lisbon (summer time)
    event = store.execute("SELECT customer_id, type, dnum FROM events").fetchall()
    assert event == [(ids["b"], "review_posted", day_number(date(2024, 1, 31)))]  # winter: Lisbon = UTC
    revenue = store.execute("SELECT revenue, dnum, placed_at FROM orders WHERE total = 10").fetchall()
    assert revenue == [(10.0, day_number(date(2024, 4, 1)), datetime(2024, 3, 31, 23, 30))]
    with db.unit_of_work(read_only=True) as session:
        last_id, last_update = session.execute(select(func.max(Order.id), func.max(Order.updated_at))).one()
    watermark = store.execute("SELECT last_id, max_updated_at FROM _sync WHERE name = 'orders'").fetchall()
    assert watermark == [(last_id, last_update.replace(tzinfo=None))]


def test_write_scores_replaces_by_id_range(db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    ws = tenant.workspace_id
    ids = sorted(seed(db, ws).values())
    monkeypatch.setattr(service, "SCORE_CHUNK", 2)  # several chunks, each its own id range

    def table(customers: list[int], segment: str) -> pa.Table:
        n = len(customers)
        return pa.table({
            "customer_id": pa.array(customers, pa.int64()), "recency_days": [1] * n, "frequency": [2] * n,
            "monetary": [3.5] * n, "r": [5] * n, "f": [4] * n, "m": [3] * n, "segment": [segment] * n,
            "p_alive": pa.array([0.5] * n), "expected_purchases_90d": pa.array([None] * n, pa.float64()),
            "expected_clv": pa.array([12.0] * n),
        })

    assert service.write_scores(db, ws, table(list(reversed(ids)), "Loyal")) == 4
    # Customer ids[1] lost its score; an unknown id (a profile erased meanwhile) is skipped, not an error.
    assert service.write_scores(db, ws, table([ids[3], ids[0], ids[2], 10**9], "Champions")) == 3
    with db.unit_of_work(read_only=True) as session:
        rows = {s.customer_id: s for s in session.scalars(select(CustomerScores))}
    assert sorted(rows) == [ids[0], ids[2], ids[3]]
    first = rows[ids[0]]
    assert (first.rfm_segment, first.rfm_r, first.monetary, first.p_alive, first.expected_purchases_90d) == (
        "Champions", 5, 3.5, 0.5, None)


def test_extract_parses_sqlite_timestamp_text() -> None:
    from patronage.analytics.extract import _utc

    as_written = _utc(["2024-03-31 23:30:00.000000", None, "2024-04-01 00:00:00"]).to_pylist()
    assert as_written == [datetime(2024, 3, 31, 23, 30, tzinfo=UTC), None, datetime(2024, 4, 1, tzinfo=UTC)]
    # Text with an offset (not written by SQLAlchemy) is still read as the instant it names.
    assert _utc(["2024-04-01 00:30:00+01:00"]).to_pylist() == [datetime(2024, 3, 31, 23, 30, tzinfo=UTC)]
