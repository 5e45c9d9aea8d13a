"""Idempotency of money-like writes over real HTTP: a repeated key replays the first response and never
applies twice; a reused key with another body is a 409; a hundred racing copies of one request apply once.
And the stored responses never keep a secret a write minted (API keys, signing secrets, opt-in tokens)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select

from patronage.events.models import Order
from patronage.kit.db import Database
from patronage.kit.idempotency import IdempotencyRecord, shown_once_fields
from patronage.kit.jobs.models import DomainEvent
from patronage.ledger import service as ledger
from patronage.ledger.models import LedgerTransaction, TxKind
from patronage.rewards.models import Redemption
from tests.battery.routes import WRITE_METHODS, api_routes
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


def test_100_racing_copies_of_one_debit_post_one_transaction(
    db: Database, tenant: Tenant, live_server: LiveServerFactory
) -> None:
    """A manual debit sent 100 times at once with one key: one ledger transaction, 100 identical answers."""
    ws = tenant.workspace_id
    customer = new_customer(db, ws, email="debit@example.com")
    give_points(db, ws, customer, 100, "seed")
    server = live_server()
    headers = {**tenant.headers, "Idempotency-Key": "goodwill-reversal-1"}

    def debit(http: httpx.Client, _: int) -> httpx.Response:
        return http.post(f"/api/v1/customers/{customer}/points/adjustments", headers=headers,
                         json={"points": -10, "reason": "reversal of a goodwill credit"})

    responses = race(100, debit, server.base_url)
    assert statuses(responses) == {"201": 100}
    assert len({r.content for r in responses}) == 1
    transactions = count(db, LedgerTransaction, LedgerTransaction.customer_id == customer,
                         LedgerTransaction.kind == TxKind.ADJUST)
    with db.unit_of_work(read_only=True) as session:
        balance = ledger.balance(session, ws, customer)
    assert (transactions, balance.available) == (1, 90)
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


# ---- secrets are shown once, never stored for a replay ---------------------------------------------------------
# A response field whose name says it carries a secret. ``csrf_token`` is stored in clear with its session anyway
# (and only the public sign-in routes, whose responses are never stored, return one). Other names that only
# look like secrets are listed with what they are.
SECRET_NAME = re.compile(r"secret|token|password|^key$|api_key")
NOT_SECRETS = {
    ("SessionOut", "csrf_token"), ("MemberSessionOut", "csrf_token"),
    ("ConsentTopicOut", "key"),  # a topic's name in code, such as "newsletter"
    ("SecretOut", "previous_secret_expires_at"),  # a time
    ("ShopOut", "secret_hint"),  # the secret's last 4 characters, to recognise it by
}


def stored_bodies(db: Database) -> list[str]:
    with db.unit_of_work(read_only=True) as session:
        return list(session.scalars(select(IdempotencyRecord.body)))


def replayed(client: TestClient, method: str, url: str, headers: dict[str, str], body: dict[str, Any],
             secret_field: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a request twice with one key: (first answer, replay); checks the replay is the first answer
    with the secret as null."""
    first = client.request(method, url, json=body, headers=headers)
    again = client.request(method, url, json=body, headers=headers)
    assert first.status_code in (200, 201), first.text
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (first.status_code, "true"), again.text
    shown, replay = first.json(), again.json()
    assert isinstance(shown[secret_field], str) and shown[secret_field], shown
    assert replay == {**shown, secret_field: None}
    return shown, replay


def test_replays_never_repeat_a_secret(client: TestClient, db: Database, tenant: Tenant) -> None:
    """API keys, webhook signing secrets (created and rotated) and double opt-in tokens: the first answer shows
    the secret, a replay answers the same but for the secret (null), and no stored response holds it."""
    h = tenant.headers
    key, _ = replayed(client, "POST", "/api/v1/api-keys", {**h, "Idempotency-Key": "mint-key"},
                      {"name": "shop integration"}, "key")
    endpoint, _ = replayed(client, "POST", "/api/v1/webhooks", {**h, "Idempotency-Key": "mint-hook"},
                           {"url": "http://127.0.0.1:9/hooks"}, "secret")
    rotated, _ = replayed(client, "POST", f"/api/v1/webhooks/{endpoint['id']}/rotate-secret",
                          {**h, "Idempotency-Key": "rotate-hook"}, {}, "secret")
    customer = client.post("/api/v1/customers", json={"external_id": "opt-in", "email": "opt@example.com"},
                           headers=h).json()["id"]
    decision, _ = replayed(client, "POST", f"/api/v1/customers/{customer}/consents",
                           {**h, "Idempotency-Key": "opt-in-1"},
                           {"channel": "email", "status": "granted", "double_opt_in": True, "source": "signup"},
                           "confirmation_token")
    secrets = [key["key"], endpoint["secret"], rotated["secret"], decision["confirmation_token"]]
    assert len(set(secrets)) == 4
    bodies = stored_bodies(db)
    assert len(bodies) == 4
    assert [s for s in secrets if any(s in body for body in bodies)] == []
    # Each operation happened once, and the secrets shown work: the key signs in, the token confirms.
    minted = [k for k in client.get("/api/v1/api-keys", headers=h).json() if k["name"] == "shop integration"]
    assert [k["id"] for k in minted] == [key["id"]]
    assert client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {key['key']}"}).status_code in (200, 403)
    confirmed = client.post("/api/v1/consents/confirm", json={"token": decision["confirmation_token"]}, headers=h)
    assert confirmed.status_code == 200, confirmed.text


def test_every_secret_in_a_stored_response_is_shown_once(app: FastAPI) -> None:
    """Generated from the route table: a write whose response may be stored for replays (an authenticated
    route) and names a secret-looking field marks it ``SHOWN_ONCE``, so a new secret-minting route cannot
    leak its secrets into the idempotency records by omission."""
    unmarked, seen = [], 0
    for route in api_routes(app):
        if route.method not in WRITE_METHODS or route.access.kind == "none":
            continue
        model = route.route.response_model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        names = {f.serialization_alias or f.alias or n for n, f in model.model_fields.items()}
        secret_like = {n for n in names if SECRET_NAME.search(n) and (model.__name__, n) not in NOT_SECRETS}
        seen += bool(secret_like)
        missing = secret_like - shown_once_fields(model)
        if missing:
            unmarked.append((route.method, route.path, sorted(missing)))
    assert seen >= 4  # api keys, webhooks (create, rotate), consents
    assert unmarked == [], unmarked
