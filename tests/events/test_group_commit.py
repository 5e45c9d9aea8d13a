"""Group commit of ``POST /orders`` (events/group_commit.py): concurrent orders written in one transaction
give exactly what sequential requests give, a failing item is isolated, Idempotency-Key keeps its
guarantee, and the setting switches it off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patronage.app import create_app
from patronage.config import Settings
from patronage.customers.models import Customer, CustomerIdentity, StageHistory
from patronage.events import orders as order_service
from patronage.events.group_commit import GroupCommitter, committer_for
from patronage.events.models import Order, OrderLine, Return
from patronage.events.orders_batch import OrderWrite, write_batch
from patronage.events.schemas import OrderIn
from patronage.kit import idempotency
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent, Job
from tests.conftest import Tenant
from tests.events.helpers import customer, order_body

URL = "/api/v1/orders"


@contextmanager
def held(committer: GroupCommitter) -> Iterator[None]:
    """The committer busy with an item that waits: what is submitted meanwhile forms the next batch."""
    started, release = threading.Event(), threading.Event()

    def blocker(_session: Session) -> None:
        started.set()
        release.wait(30)

    future = committer.submit(blocker)
    assert started.wait(10)
    try:
        yield
    finally:
        release.set()
        future.result(30)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def bodies() -> list[dict[str, Any]]:
    """Orders whose outcomes depend on what came before them: re-sends, a change, shared new customers."""
    return [
        order_body("A", customer_external_id="new-1"),
        order_body("A", customer_external_id="new-1"),  # the same order again: unchanged
        order_body("B", customer_external_id="new-1", placed_at="2024-03-05T10:00:00Z"),  # the same new customer
        order_body("A", customer_external_id="new-1", channel="app"),  # changed: updated
        order_body("C", customer_external_id="new-2", status="cancelled"),
        order_body("D", customer_external_id="new-3", customer_email="d@example.com"),
        order_body("E", customer_external_id=None, customer_email="guest@example.com"),
        order_body("F", customer_external_id="new-2", total="99.00"),  # the money rule: 422
        order_body("G", customer_external_id="held-1"),  # a held return waits for it
        order_body("H", customer_external_id="new-3", currency="usd"),
    ]


def normalise(value: Any, names: dict[tuple[str, int], str]) -> Any:
    """``value`` without what differs between two workspaces (row ids, timestamps of the write)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("id", "created_at", "updated_at", "return_id", "returned_at"):  # ids, write times
                continue
            named = names.get((key, item), item) if key in ("customer_id", "order_id") else item
            out[key] = normalise(named, names)
        return out
    if isinstance(value, list):
        return [normalise(v, names) for v in value]
    return value


def names_of(db: Database, workspace_id: int) -> dict[tuple[str, int], str]:
    with db.unit_of_work(read_only=True) as s:
        names = {("customer_id", cid): f"c:{ext or email}" for cid, ext, email in s.execute(
            select(Customer.id, Customer.external_id, Customer.email).where(Customer.workspace_id == workspace_id))}
        names.update({("order_id", oid): f"o:{ext}" for oid, ext in s.execute(
            select(Order.id, Order.external_id).where(Order.workspace_id == workspace_id))})
    return names


def snapshot(db: Database, workspace_id: int) -> dict[str, Any]:
    """Everything an order's write leaves, in a form two workspaces can be compared in."""
    names = names_of(db, workspace_id)
    with db.unit_of_work(read_only=True) as s:
        events: dict[int, tuple[str, str]] = {}
        by_customer: dict[str, list[tuple[str, str]]] = {}
        for event_id, kind, payload in s.execute(select(DomainEvent.id, DomainEvent.type, DomainEvent.payload)
                                                 .where(DomainEvent.workspace_id == workspace_id)
                                                 .order_by(DomainEvent.id)):
            named = normalise(payload, names)
            events[event_id] = (kind, repr(named))
            by_customer.setdefault(named["customer_id"], []).append(events[event_id])

        def rows(*columns: Any, where: Any, order_by: Any) -> list[tuple[Any, ...]]:
            found = s.execute(select(*columns).where(where).order_by(*order_by)).all()
            return [tuple(normalise(v, names) for v in row) for row in found]

        return {
            "customers": sorted(rows(Customer.external_id, Customer.email, Customer.orders_count,
                                     Customer.total_spent, Customer.first_order_at, Customer.last_order_at,
                                     Customer.lifecycle_stage, where=Customer.workspace_id == workspace_id,
                                     order_by=[Customer.id]), key=repr),
            "identities": sorted(
                (kind, value, names[("customer_id", cid)]) for kind, value, cid in s.execute(
                    select(CustomerIdentity.kind, CustomerIdentity.value, CustomerIdentity.customer_id)
                    .where(CustomerIdentity.workspace_id == workspace_id))),
            "stages": len(rows(StageHistory.id, where=StageHistory.workspace_id == workspace_id, order_by=[])),
            "orders": [(ext, names[("customer_id", cid)], *rest) for ext, cid, *rest in rows(
                Order.external_id, Order.customer_id, Order.total, Order.status, Order.channel, Order.refunded_total,
                Order.currency, Order.content_hash, where=Order.workspace_id == workspace_id,
                order_by=[Order.external_id])],
            "lines": len(rows(OrderLine.id, where=OrderLine.workspace_id == workspace_id, order_by=[])),
            "returns": rows(Return.external_id, Return.status, Return.amount,
                            where=Return.workspace_id == workspace_id, order_by=[Return.external_id]),
            # Each customer's events in the order recorded (a batch announces its new profiles first,
            # so only the order of the events naming one customer is the same as sequential requests').
            "events": by_customer,
            # Each job as its task and the event it reacts to.
            "jobs": sorted((task, events.get(payload.get("event_id"))) for task, payload in s.execute(
                select(Job.task, Job.payload).where(Job.workspace_id == workspace_id))),
        }


def answer(response: Any, names: dict[tuple[str, int], str]) -> tuple[int, Any]:
    body = response.json()
    if response.status_code >= 400:
        return response.status_code, {k: body.get(k) for k in ("code", "errors", "status")}
    return response.status_code, normalise(body, names)


@pytest.fixture
def sequential_app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings.model_copy(update={"order_group_commit": False}), db=db)


def test_one_batch_gives_what_sequential_requests_give(
    client: TestClient, app: FastAPI, sequential_app: FastAPI, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    for who in (tenant, other_tenant):  # a return held for G, in both workspaces
        held_return = {"external_id": "R-1", "order_external_id": "G", "amount": "10.00"}
        assert client.post("/api/v1/returns", json=held_return, headers=who.headers).status_code == 201
    # Sequentially, without group commit, in the other workspace.
    with TestClient(sequential_app, base_url="https://testserver") as sequential:
        expected = [sequential.post(URL, json=b, headers=other_tenant.headers) for b in bodies()]
        assert not hasattr(sequential_app.state, "group_committer")
    # The same requests in one batch: each is queued before the next is sent, so the order is known.
    committer = app.state.group_committer = GroupCommitter(db, write_batch)  # one thread: batches are forced
    assert committer_for(app.state, db) is committer
    responses: list[Any] = [None] * len(bodies())

    def send(i: int, body: dict[str, Any]) -> None:
        responses[i] = client.post(URL, json=body, headers=tenant.headers)

    threads = []
    with held(committer):
        for i, body in enumerate(bodies()):
            thread = threading.Thread(target=send, args=(i, body))
            thread.start()
            threads.append(thread)
            wait_until(lambda n=i + 1: committer.waiting == n)
        transactions_before = committer.transactions
    for thread in threads:
        thread.join(30)
    # The blocker; the seven before the 422 as one batch; the two after it as another.
    assert committer.transactions - transactions_before == 3

    got_names, want_names = names_of(db, tenant.workspace_id), names_of(db, other_tenant.workspace_id)
    assert [answer(r, got_names) for r in responses] == [answer(r, want_names) for r in expected]
    assert [r.status_code for r in responses] == [201, 200, 201, 200, 201, 201, 201, 422, 201, 201]
    assert [r.json().get("status") for r in responses[:4]] == ["created", "unchanged", "created", "updated"]
    assert snapshot(db, tenant.workspace_id) == snapshot(db, other_tenant.workspace_id)
    with db.unit_of_work(read_only=True) as s:
        new_1 = s.scalars(select(Customer).where(Customer.workspace_id == tenant.workspace_id,
                                                 Customer.external_id == "new-1")).one()
        assert (new_1.orders_count, new_1.total_spent) == (2, Decimal("69.80"))


def test_concurrent_requests_leave_what_sequential_requests_leave(
    client: TestClient, app: FastAPI, sequential_app: FastAPI, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    """Threads racing (no forced batches): order-independent results equal a sequential run's."""
    sent = [order_body(f"o-{i}", customer_external_id=f"c-{i % 7}", placed_at=f"2024-03-{1 + i % 20:02d}T10:00:00Z")
            for i in range(40)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda b: client.post(URL, json=b, headers=tenant.headers).status_code, sent))
    assert statuses == [201] * len(sent)
    with TestClient(sequential_app, base_url="https://testserver") as sequential:
        for body in sent:
            assert sequential.post(URL, json=body, headers=other_tenant.headers).status_code == 201
    got, want = snapshot(db, tenant.workspace_id), snapshot(db, other_tenant.workspace_id)
    for snap in (got, want):  # racing requests commit in any order: each customer's events as a multiset
        snap["events"] = {name: sorted(events) for name, events in snap["events"].items()}
    assert got == want
    assert committer_for(app.state, db).items == len(sent)


def test_orders_in_one_batch_see_each_other(tenant: Tenant, other_tenant: Tenant, db: Database) -> None:
    """The set-based writer: a re-send, a change and a second first order of one new customer in one batch,
    with another workspace's order between them."""
    committer = GroupCommitter(db, write_batch)

    def write(who: Tenant, body: dict[str, Any]) -> OrderWrite:
        return OrderWrite(who.workspace_id, OrderIn.model_validate(body), "t",
                          lambda outcome, order: (outcome, order.customer_id, order.total))

    with held(committer):
        futures = [committer.submit(w) for w in (
            write(tenant, order_body("X", customer_external_id="n-1")),
            write(other_tenant, order_body("X", customer_external_id="n-1")),
            write(tenant, order_body("X", customer_external_id="n-1")),
            write(tenant, order_body("Y", customer_external_id="n-1")),
            write(tenant, order_body("X", customer_external_id="n-1", total="40.00", shipping_total="10.00")),
            write(tenant, order_body("Z", customer_external_id="n-2", status="cancelled")))]
    results = [f.result(30) for f in futures]
    assert [r[0] for r in results] == ["created", "created", "unchanged", "created", "updated", "created"]
    assert results[0][1] == results[2][1] == results[3][1] == results[4][1] != results[1][1]
    assert results[4][2] == Decimal("40.00")
    assert (committer.transactions, committer.items) == (2, 7)  # the blocker, then the six together
    with db.unit_of_work(read_only=True) as s:
        n1 = s.scalars(select(Customer).where(Customer.workspace_id == tenant.workspace_id,
                                              Customer.external_id == "n-1")).one()
        assert (n1.orders_count, n1.total_spent) == (2, Decimal("74.90"))
        n2 = s.scalars(select(Customer).where(Customer.external_id == "n-2")).one()
        assert (n2.orders_count, n2.total_spent, n2.lifecycle_stage) == (0, Decimal(0), "prospect")
        kinds = s.scalars(select(DomainEvent.type).where(DomainEvent.workspace_id == tenant.workspace_id)
                          .order_by(DomainEvent.id)).all()
    assert kinds == ["customer.created", "order.recorded", "order.recorded", "order.updated",
                     "customer.created", "order.recorded", "order.status_changed"]
    committer.stop()
    assert not committer.running


def test_a_failing_item_is_isolated_and_the_others_commit(tenant: Tenant, db: Database) -> None:
    """A constraint only the database catches (a duplicate idempotency key), in the middle of a batch."""
    ws = tenant.workspace_id
    committer = GroupCommitter(db)

    def order(external_id: str, *, then: Callable[[Session], None] | None = None) -> Callable[[Session], str]:
        def work(s: Session) -> str:
            outcome, _ = order_service.upsert_order(s, ws, OrderIn.model_validate(
                order_body(external_id, customer_external_id=f"cust-{external_id}")), actor="t")
            if then is not None:
                then(s)
            return outcome
        return work

    def duplicate_key(s: Session) -> None:
        for _ in range(2):
            idempotency.remember(s, ws, "k-1", "f", status_code=201, media_type="application/json", body="{}")

    with held(committer):
        futures = [committer.submit(order("ok-1")), committer.submit(order("ok-2")),
                   committer.submit(order("bad", then=duplicate_key)), committer.submit(order("ok-3")),
                   committer.submit(order("ok-4"))]
    assert [f.result(30) for f in futures[:2] + futures[3:]] == ["created"] * 4
    with pytest.raises(IntegrityError):
        futures[2].result(30)
    with db.unit_of_work(read_only=True) as s:
        stored = s.scalars(select(Order.external_id).order_by(Order.id)).all()
        assert stored == ["ok-1", "ok-2", "ok-3", "ok-4"]
        assert s.scalars(select(Customer.external_id).order_by(Customer.id)).all() == [
            "cust-ok-1", "cust-ok-2", "cust-ok-3", "cust-ok-4"]
        assert s.scalar(select(idempotency.IdempotencyRecord.id)) is None
    # The blocker; the two before the bad item as a batch; the two after it as a batch.
    assert (committer.transactions, committer.items) == (3, 5)
    committer.stop()


def test_a_failed_commit_writes_each_item_alone(tenant: Tenant, db: Database) -> None:
    ws = tenant.workspace_id
    committer = GroupCommitter(db)

    def refuse_commit(_session: Session) -> None:
        raise RuntimeError("commit refused")

    def work(external_id: str, *, poison: bool = False) -> Callable[[Session], str]:
        def run(s: Session) -> str:
            outcome, _ = order_service.upsert_order(s, ws, OrderIn.model_validate(order_body(external_id)), actor="t")
            if poison:
                event.listen(s, "before_commit", refuse_commit, once=True)
            return outcome
        return run

    with held(committer):
        futures = [committer.submit(work("p-1")), committer.submit(work("p-2", poison=True)),
                   committer.submit(work("p-3"))]
    assert futures[0].result(30) == "created" and futures[2].result(30) == "created"
    with pytest.raises(RuntimeError, match="commit refused"):
        futures[1].result(30)
    with db.unit_of_work(read_only=True) as s:
        assert s.scalars(select(Order.external_id).order_by(Order.id)).all() == ["p-1", "p-3"]
    assert customer(db, "c-1").orders_count == 2
    committer.stop()


def test_idempotency_key_takes_the_request_transaction(client: TestClient, app: FastAPI, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "order-k-1"}
    first = client.post(URL, json=order_body("K-1"), headers=headers)
    assert first.status_code == 201, first.text
    again = client.post(URL, json=order_body("K-1"), headers=headers)
    assert (again.status_code, again.json(), again.headers.get("idempotent-replayed")) == (201, first.json(), "true")
    other = client.post(URL, json=order_body("K-2"), headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert not hasattr(app.state, "group_committer")  # keyed requests never reach the committer
    # Without the key, the same order is answered by the committer as a re-send.
    resent = client.post(URL, json=order_body("K-1"), headers=tenant.headers)
    assert resent.status_code == 200 and resent.json()["status"] == "unchanged"
    assert app.state.group_committer.items == 1


def test_the_committer_runs_as_many_threads_as_configured(settings: Settings, db: Database, tenant: Tenant) -> None:
    assert Settings().order_group_commit_threads == 1  # the biggest batches: the least CPU per order
    with pytest.raises(ValueError, match="order_group_commit_threads"):
        Settings(order_group_commit_threads=0)
    app = create_app(settings.model_copy(update={"order_group_commit_threads": 3}), db=db)
    with TestClient(app, base_url="https://testserver") as client:
        assert client.post(URL, json=order_body("T-1"), headers=tenant.headers).status_code == 201
        assert app.state.group_committer.threads == 3


def test_errors_and_shutdown(app: FastAPI, tenant: Tenant, db: Database) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        bad = client.post(URL, json=order_body("Z", total="1.00"), headers=tenant.headers)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert bad.json()["errors"][0]["field"] == "total"
        unauthenticated = client.post(URL, json=order_body("Z"))
        assert unauthenticated.status_code == 401
        assert client.post(URL, json=order_body("Z"), headers=tenant.headers).status_code == 201
        committer = app.state.group_committer
        assert committer.running
    assert not committer.running  # the lifespan stopped it
