"""Idempotency keys: same key + same body -> the same response and one effect; other body -> 409."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from patronage.app import create_app
from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.idempotency import IdempotencyRecord, request_fingerprint
from patronage.workspaces.models import ApiKey
from tests.conftest import Tenant
from tests.kit.helpers import count, live_server


def keys_named(db: Database, name: str) -> int:
    return count(db, ApiKey, ApiKey.name == name)


def test_same_key_same_body_replays_the_first_response(client: TestClient, db: Database, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "create-key-1"}
    first = client.post("/api/v1/api-keys", json={"name": "shop"}, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    second = client.post("/api/v1/api-keys", json={"name": "shop"}, headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["content-type"] == first.headers["content-type"]
    # The same response but for the secret: shown once, never stored for replays (docs/api.md).
    assert second.json() == {**first.json(), "key": None}
    assert keys_named(db, "shop") == 1
    assert count(db, IdempotencyRecord) == 1


def test_same_key_other_body_is_409(client: TestClient, db: Database, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "create-key-2"}
    assert client.post("/api/v1/api-keys", json={"name": "a"}, headers=headers).status_code == 201
    reused = client.post("/api/v1/api-keys", json={"name": "b"}, headers=headers)
    assert reused.status_code == 409
    assert reused.json()["code"] == "idempotency_key_reused"
    # Another path with the same key is another request too.
    other_path = client.patch("/api/v1/workspace", json={"name": "x"}, headers=headers)
    assert other_path.json()["code"] == "idempotency_key_reused"
    assert keys_named(db, "b") == 0


def test_keys_belong_to_one_workspace(client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    for who in (tenant, other_tenant):
        response = client.post(
            "/api/v1/api-keys", json={"name": "same"}, headers={**who.headers, "Idempotency-Key": "shared"}
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers
    assert keys_named(db, "same") == 2


def test_failed_requests_are_not_remembered(client: TestClient, db: Database, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "retry-me"}
    refused = client.post("/api/v1/api-keys", json={"name": "k", "scopes": ["no:such"]}, headers=headers)
    assert refused.status_code == 422
    assert client.post("/api/v1/api-keys", json={"name": "k"}, headers=headers).status_code == 201
    assert count(db, IdempotencyRecord) == 1


def test_reads_ignore_the_header(client: TestClient, db: Database, tenant: Tenant) -> None:
    for _ in range(2):
        response = client.get("/api/v1/workspace", headers={**tenant.headers, "Idempotency-Key": "read"})
        assert response.status_code == 200
        assert "idempotent-replayed" not in response.headers
    assert count(db, IdempotencyRecord) == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tinside"])
def test_malformed_keys_are_422(client: TestClient, tenant: Tenant, key: str) -> None:
    response = client.post("/api/v1/api-keys", json={"name": "k"}, headers={**tenant.headers, "Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_keys_expire_after_24_hours(client: TestClient, db: Database, tenant: Tenant) -> None:
    clock.freeze(datetime(2030, 1, 1, 12, tzinfo=UTC))
    headers = {**tenant.headers, "Idempotency-Key": "daily"}
    assert client.post("/api/v1/api-keys", json={"name": "d"}, headers=headers).status_code == 201
    clock.advance(timedelta(hours=23, minutes=59))
    assert client.post("/api/v1/api-keys", json={"name": "d"}, headers=headers).headers["idempotent-replayed"]
    clock.advance(timedelta(minutes=2))
    fresh = client.post("/api/v1/api-keys", json={"name": "d"}, headers=headers)
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert keys_named(db, "d") == 2
    assert count(db, IdempotencyRecord) == 1  # the expired record made way for the new one


def test_fingerprint_separates_method_path_and_body() -> None:
    base = request_fingerprint("POST", "/a", b"{}")
    assert base == request_fingerprint("post", "/a", b"{}")
    assert base != request_fingerprint("PUT", "/a", b"{}")
    assert base != request_fingerprint("POST", "/a/", b"{}")
    assert base != request_fingerprint("POST", "/a", b"{ }")
    # Length-prefixed parts: moving bytes between path and body changes the fingerprint.
    assert request_fingerprint("POST", "/ab", b"c") != request_fingerprint("POST", "/a", b"bc")


def test_concurrent_requests_with_one_key_have_one_effect(settings: Settings, db: Database, tenant: Tenant) -> None:
    """Real threads against a real server: the requests race through the whole stack."""
    app = create_app(settings, db=db)
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[httpx.Response] = []
    errors: list[BaseException] = []
    headers = {**tenant.headers, "Idempotency-Key": "concurrent-1"}

    with live_server(app) as base_url:

        def send() -> None:
            try:
                with httpx.Client(base_url=base_url, timeout=60) as http:
                    barrier.wait(timeout=30)
                    results.append(http.post("/api/v1/api-keys", json={"name": "raced"}, headers=headers))
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)

        threads = [threading.Thread(target=send) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)

    assert not errors
    assert len(results) == workers
    assert {r.status_code for r in results} == {201}, [r.text for r in results]
    winners = [r for r in results if "idempotent-replayed" not in r.headers]
    assert len(winners) == 1
    # Every other caller saw the winner's response, without the secret (shown once, never stored).
    assert all(r.json() == {**winners[0].json(), "key": None} for r in results if r not in winners)
    assert keys_named(db, "raced") == 1
    assert count(db, IdempotencyRecord) == 1
