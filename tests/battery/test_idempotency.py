"""Idempotency of money-like writes over real HTTP: a repeated key replays the first response and never
applies twice; a reused key with another body is a 409; a hundred racing copies of one request apply once."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy import func, select

from patronage.events.models import Order
from patronage.kit.db import Database
from patronage.kit.idempotency import IdempotencyRecord
from patronage.kit.jobs.models import DomainEvent
from patronage.ledger.models import LedgerTransaction, TxKind
from patronage.rewards.models import Redemption
from tests.battery.server import LiveServer, race, statuses
from tests.battery.test_concurrency import reward
from tests.conftest import Tenant
from tests.rewards.helpers import give_points, new_customer

LiveServerFactory = Callable[..., LiveServer]


def count(db: Database, model: object, *where: object) -> int:
    with db.unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def spends(db: Database, customer: int) -> int:
    return count(db, LedgerTransaction, LedgerTransaction.customer_id == customer,
                 LedgerTransaction.kind == TxKind.SPEND)


def test_a_repeated_redemption_replays_and_spends_once(
    db: Database, tenant: Tenant, live_server: LiveServerFactory
) -> None:
    ws = tenant.workspace_id
    customer = new_customer(db, ws, email="idem@example.com")
    give_points(db, ws, customer, 100, "seed")
    reward_id = reward(db, ws, 30)
    server = live_server()
    url = f"/api/v1/customers/{customer}/rewards/{reward_id}/redeem"
    headers = {**tenant.headers, "Idempotency-Key": "checkout-77"}
    with server.client() as http:
        first = http.post(url, headers=headers, json={"request_id": "a"})
        second = http.post(url, headers=headers, json={"request_id": "a"})
        other_body = http.post(url, headers=headers, json={"request_id": "b"})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert (second.status_code, second.headers["idempotent-replayed"]) == (201, "true")
    assert second.content == first.content
    assert (other_body.status_code, other_body.json()["code"]) == (409, "idempotency_key_reused")
    assert spends(db, customer) == 1
    assert count(db, Redemption, Redemption.customer_id == customer) == 1
    assert count(db, IdempotencyRecord) == 1


def test_25_racing_copies_of_one_redemption_spend_once(
    db: Database, tenant: Tenant, live_server: LiveServerFactory
) -> None:
    """Within the per-customer redemption rate limit (30 a minute), so every copy is answered."""
    ws = tenant.workspace_id
    customer = new_customer(db, ws, email="race@example.com")
    give_points(db, ws, customer, 100, "seed")
    reward_id = reward(db, ws, 30)
    server = live_server()
    headers = {**tenant.headers, "Idempotency-Key": "one-click-twentyfive-times"}

    def redeem(http: httpx.Client, _: int) -> httpx.Response:
        return http.post(f"/api/v1/customers/{customer}/rewards/{reward_id}/redeem", headers=headers,
                         json={"request_id": "double-click"})

    responses = race(25, redeem, server.base_url)
    assert statuses(responses) == {"201": 25}
    assert len({r.content for r in responses}) == 1  # every caller saw the one redemption
    assert spends(db, customer) == 1
    assert count(db, IdempotencyRecord) == 1


ORDER = {"external_id": "idem-order-1", "customer_external_id": "shopper-1", "placed_at": "2025-05-01T10:00:00Z",
         "lines": [{"line_id": "1", "sku": "TEA", "unit_price": "12.50", "quantity": 2}]}


def test_100_racing_copies_of_one_order_apply_once(
    db: Database, tenant: Tenant, live_server: LiveServerFactory
) -> None:
    server = live_server()
    headers = {**tenant.headers, "Idempotency-Key": "order-idem-order-1"}

    def send(http: httpx.Client, _: int) -> httpx.Response:
        return http.post("/api/v1/orders", headers=headers, json=ORDER)

    responses = race(100, send, server.base_url)
    assert statuses(responses) == {"201": 100}
    assert len({r.content for r in responses}) == 1
    assert count(db, Order) == 1
    assert count(db, DomainEvent, DomainEvent.type == "order.recorded") == 1
    assert count(db, IdempotencyRecord) == 1
    with server.client() as http:  # the same key with another body: refused, nothing written
        changed = http.post("/api/v1/orders", headers=headers, json={**ORDER, "external_id": "idem-order-2"})
    assert (changed.status_code, changed.json()["code"]) == (409, "idempotency_key_reused")
    assert count(db, Order) == 1
