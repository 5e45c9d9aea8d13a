"""Dynamic membership (bulk and per customer) with entered/exited events; static CSV lists; the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.customers.models import Customer
from patronage.events.models import Order
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent, Job
from patronage.kit.jobs.queue import record_event
from patronage.segments import service, tasks
from patronage.segments.models import Segment
from patronage.segments.schemas import SegmentCreate
from tests.conftest import Tenant

REPEATERS = {"field": "orders_count", "op": "gte", "value": 2}


def _customer(db: Database, ws: int, external_id: str, orders: int = 0, email: str | None = None) -> int:
    with db.unit_of_work() as session:
        customer = Customer(workspace_id=ws, external_id=external_id, email=email, orders_count=orders)
        session.add(customer)
        session.flush()
        return customer.id


def _events(db: Database, ws: int, kind: str) -> list[dict[str, object]]:
    with db.unit_of_work(read_only=True) as session:
        stmt = select(DomainEvent.payload).where(DomainEvent.workspace_id == ws, DomainEvent.type == kind)
        return list(session.scalars(stmt.order_by(DomainEvent.id)))


def test_bulk_evaluation_emits_transitions(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    a = _customer(db, ws, "a", orders=3)
    b = _customer(db, ws, "b", orders=1)
    with db.unit_of_work() as session:
        segment = service.create_segment(session, ws, SegmentCreate(name="Repeaters", definition=REPEATERS),
                                         actor="test")
        segment_id = segment.id
    assert [e["customer_id"] for e in _events(db, ws, "segment.entered")] == [a]
    with db.unit_of_work() as session:
        session.get(Customer, a).orders_count = 1  # type: ignore[union-attr]
        session.get(Customer, b).orders_count = 2  # type: ignore[union-attr]
    with db.unit_of_work() as session:
        service.evaluate_all(session, ws)
        assert service.is_member(session, ws, segment_id, b)
        assert not service.is_member(session, ws, segment_id, a)
        assert session.get(Segment, segment_id).member_count == 1  # type: ignore[union-attr]
    assert [e["customer_id"] for e in _events(db, ws, "segment.entered")] == [a, b]
    exited = _events(db, ws, "segment.exited")
    assert exited == [{"segment_id": segment_id, "segment_name": "Repeaters", "customer_id": a}]


def test_events_trigger_debounced_reevaluation(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    c = _customer(db, ws, "c", orders=0)
    with db.unit_of_work() as session:
        segment_id = service.create_segment(
            session, ws, SegmentCreate(name="Buyers", definition={"field": "orders_in_window", "op": "gte",
                                                                   "value": 1, "within_days": 30}), actor="test",
        ).id
    with db.unit_of_work() as session:
        session.add(Order(workspace_id=ws, external_id="o1", customer_id=c, currency="EUR", subtotal=Decimal(5),
                          total=Decimal(5), placed_at=datetime.now(UTC) - timedelta(days=1)))
        for _ in range(3):  # a burst: one re-evaluation job, enqueued by the relay at commit
            record_event(session, ws, "order.recorded", {"customer_id": c})
    with db.unit_of_work() as session:
        assert not session.scalars(select(Job).where(Job.task.like("segments.on:%"))).all()  # no relay jobs
        queued = session.scalars(select(Job).where(Job.task == tasks.REEVALUATE)).all()
        assert len(queued) == 1 and queued[0].unique_key == f"segments:customer:{ws}:{c}"
        tasks.reevaluate_customer(session, _ctx(queued[0]))
    with db.unit_of_work(read_only=True) as session:
        assert service.is_member(session, ws, segment_id, c)
    assert _events(db, ws, "segment.entered")[-1]["customer_id"] == c


def _ctx(job: Job):  # type: ignore[no-untyped-def]
    from patronage.kit.jobs import JobContext

    return JobContext(job.id, job.task, job.workspace_id, dict(job.payload), 1, 3, job.run_at)


def test_static_segment_from_csv(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    x = _customer(db, ws, "x-1", email="x@example.com")
    y = _customer(db, ws, "y-2", email="y@example.com")
    with db.unit_of_work() as session:
        segment = service.create_segment(session, ws, SegmentCreate(name="Imported", kind="static"), actor="t")
        from patronage.segments import csv_import

        result = csv_import.upload(session, ws, segment, b"external_id,name\nx-1,X\nnobody,N\n\ny-2,Y\n,Z\n")
    assert (result.rows, result.matched, result.added) == (4, 2, 2)
    assert [(u.row, u.value) for u in result.unmatched] == [(3, "nobody"), (6, "")]
    with db.unit_of_work() as session:
        segment = session.get(Segment, segment.id)
        assert segment is not None
        result = csv_import.upload(session, ws, segment, b"email\nY@example.com\n")
        assert (result.matched, result.added, result.removed, result.member_count) == (1, 0, 1, 1)
        assert service.is_member(session, ws, segment.id, y) and not service.is_member(session, ws, segment.id, x)


def test_segments_api(client: TestClient, db: Database, tenant: Tenant) -> None:
    h = tenant.headers
    for i in range(3):
        _customer(db, tenant.workspace_id, f"p{i}", orders=i, email=f"p{i}@example.com")
    preview = client.post("/api/v1/segments/preview", json={"definition": REPEATERS, "sample_size": 5}, headers=h)
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 1 and preview.json()["sample"][0]["external_id"] == "p2"
    bad = client.post("/api/v1/segments/preview", headers=h,
                      json={"definition": {"and": [{"field": "loyalty_score", "op": "gte", "value": 1}]}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "definition.and[0].field"
    assert "unknown field" in bad.json()["errors"][0]["message"]
    created = client.post("/api/v1/segments", json={"name": "Repeat", "definition": REPEATERS}, headers=h)
    assert created.status_code == 201, created.text
    seg = created.json()
    assert seg["member_count"] == 1
    members = client.get(f"/api/v1/segments/{seg['id']}/members", headers=h).json()
    assert [m["external_id"] for m in members["items"]] == ["p2"]
    patched = client.patch(f"/api/v1/segments/{seg['id']}", headers=h,
                           json={"definition": {"field": "orders_count", "op": "gte", "value": 1}})
    assert patched.json()["member_count"] == 2
    static = client.post("/api/v1/segments", json={"name": "List", "kind": "static"}, headers=h).json()
    upload = client.post(f"/api/v1/segments/{static['id']}/upload", headers={**h, "Content-Type": "text/csv"},
                         content=b"email\np0@example.com\nghost@example.com\n")
    assert upload.status_code == 200, upload.text
    assert upload.json()["matched"] == 1 and upload.json()["unmatched"][0]["value"] == "ghost@example.com"
    assert client.get("/api/v1/segments/fields", headers=h).status_code == 200
    assert client.delete(f"/api/v1/segments/{seg['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/segments/{seg['id']}", headers=h).status_code == 404
