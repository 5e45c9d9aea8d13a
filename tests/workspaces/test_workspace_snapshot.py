"""``GET /workspace`` for a recently seen API key answers from the key's cached principal: no query, and
every change made through this process shows at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update
from tests.conftest import Tenant

from patronage.kit.db import Database
from patronage.workspaces.auth import API_KEY_CACHE
from patronage.workspaces.models import Workspace


@pytest.fixture
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engines = {db.engine, db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", record)


def test_a_cached_key_reads_its_workspace_without_a_query(
    client: TestClient, tenant: Tenant, statements: list[str]
) -> None:
    first = client.get("/api/v1/workspace", headers=tenant.headers)
    assert first.status_code == 200
    assert any("workspaces" in s for s in statements)
    statements.clear()
    second = client.get("/api/v1/workspace", headers=tenant.headers)
    assert second.status_code == 200 and second.json() == first.json()
    assert second.headers["content-type"] == "application/json"
    assert [s for s in statements if "last_used_at" not in s] == []


def test_a_change_shows_at_once(client: TestClient, tenant: Tenant) -> None:
    assert client.get("/api/v1/workspace", headers=tenant.headers).json()["name"] != "Renamed"
    response = client.patch("/api/v1/workspace", json={"name": "Renamed", "currency": "EUR"}, headers=tenant.headers)
    assert response.status_code == 200
    body = client.get("/api/v1/workspace", headers=tenant.headers).json()
    assert (body["name"], body["currency"]) == ("Renamed", "EUR")


def test_a_change_by_another_process_shows_once_the_cache_expires(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    assert client.get("/api/v1/workspace", headers=tenant.headers).status_code == 200
    with db.unit_of_work() as session:  # as another process would: this one's cache is not told
        session.execute(update(Workspace).where(Workspace.id == tenant.workspace_id).values(name="Elsewhere"))
    assert client.get("/api/v1/workspace", headers=tenant.headers).json()["name"] != "Elsewhere"
    API_KEY_CACHE.clear()  # what api_key_cache_seconds passing does
    assert client.get("/api/v1/workspace", headers=tenant.headers).json()["name"] == "Elsewhere"


def test_a_revoked_key_stops_at_once(client: TestClient, tenant: Tenant) -> None:
    created = client.post("/api/v1/api-keys", json={"name": "short", "scopes": ["workspace:read"]},
                          headers=tenant.headers).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/v1/workspace", headers=headers).status_code == 200
    assert client.get("/api/v1/workspace", headers=headers).status_code == 200  # from the cache now
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=tenant.headers).status_code == 200
    assert client.get("/api/v1/workspace", headers=headers).status_code == 401


def test_an_answer_read_before_a_clear_is_not_kept_after_it(client: TestClient, tenant: Tenant) -> None:
    """A look-up that read the key (or the workspace) before a revocation committed must not put it back."""
    assert client.get("/api/v1/workspace", headers=tenant.headers).status_code == 200
    digest = next(iter(API_KEY_CACHE._entries))
    principal = API_KEY_CACHE.get(digest)
    assert principal is not None
    generation = API_KEY_CACHE.generation  # taken before the read, as _from_api_key does
    API_KEY_CACHE.clear()  # the revocation commits meanwhile
    API_KEY_CACHE.put(digest, principal, 60, generation)
    assert API_KEY_CACHE.get(digest) is None
    API_KEY_CACHE.put(digest, principal, 60, API_KEY_CACHE.generation)
    API_KEY_CACHE.forget_workspaces()  # a workspace change: the principal stays, its snapshot goes
    API_KEY_CACHE.put_workspace(digest, principal.workspace_id, b"{}", generation)
    assert API_KEY_CACHE.get(digest) == principal and API_KEY_CACHE.workspace(digest) is None
