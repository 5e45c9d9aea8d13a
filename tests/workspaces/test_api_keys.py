"""API keys: shown once, stored as a digest, scoped no wider than their creator, stamped when used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from tests.conftest import Tenant
from tests.kit.helpers import PASSWORD, add_user, count, login

from patronage.app import create_app
from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.security import token_digest
from patronage.workspaces.auth import API_KEY_CACHE
from patronage.workspaces.models import ApiKey
from patronage.workspaces.permissions import DEFAULT_API_KEY_SCOPES, Role

NOW = datetime(2030, 3, 1, 9, 30, tzinfo=UTC)


def _create(client: TestClient, headers: dict[str, str], **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post("/api/v1/api-keys", json={"name": "k", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_secret_is_shown_once_and_never_stored(client: TestClient, db: Database, tenant: Tenant) -> None:
    created = _create(client, tenant.headers, name="till", scopes=["workspace:read"])
    secret = created["key"]
    assert secret.startswith("pat_") and created["prefix"] == secret[:12]
    listed = client.get("/api/v1/api-keys", headers=tenant.headers).json()
    assert all("key" not in item for item in listed)
    assert secret not in client.get("/api/v1/api-keys", headers=tenant.headers).text
    with db.unit_of_work(read_only=True) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == created["id"])).one()
        assert row.key_hash == token_digest(secret)
        # Not in any column of any key, nor in the audit trail.
        for table in ("api_keys", "audit_log"):
            for values in session.execute(text(f"SELECT * FROM {table}")):
                assert all(secret not in str(v) and secret[12:] not in str(v) for v in values), table
    # And the secret works.
    assert client.get("/api/v1/workspace", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_default_scopes_are_the_integration_set(client: TestClient, tenant: Tenant) -> None:
    assert set(_create(client, tenant.headers)["scopes"]) == {p.value for p in DEFAULT_API_KEY_SCOPES}


def test_scopes_cannot_exceed_the_creators_permissions(client: TestClient, db: Database, tenant: Tenant) -> None:
    manager = _create(client, tenant.headers, name="manager", scopes=["api_keys:manage", "workspace:read"])
    headers = {"Authorization": f"Bearer {manager['key']}"}
    wider = client.post("/api/v1/api-keys", json={"name": "wider", "scopes": ["customers:erase"]}, headers=headers)
    assert wider.status_code == 403
    assert "customers:erase" in wider.json()["detail"]
    # The default set is wider than this key, too.
    assert client.post("/api/v1/api-keys", json={"name": "default"}, headers=headers).status_code == 403
    assert _create(client, headers, name="narrower", scopes=["workspace:read"])["scopes"] == ["workspace:read"]
    assert count(db, ApiKey, ApiKey.name.in_(["wider", "default"])) == 0

    # A marketer (no api_keys:manage) cannot mint keys; an admin cannot mint ownership.
    add_user(db, tenant.workspace_id, "admin@acme.test", Role.ADMIN)
    csrf = login(client, "admin@acme.test", PASSWORD)
    denied = client.post(
        "/api/v1/api-keys", json={"name": "own", "scopes": ["workspace:ownership"]}, headers={"X-CSRF-Token": csrf}
    )
    assert denied.status_code == 403
    granted = client.post(
        "/api/v1/api-keys", json={"name": "ops", "scopes": ["jobs:manage"]}, headers={"X-CSRF-Token": csrf}
    )
    assert granted.status_code == 201


def test_last_used_at_is_stamped(client: TestClient, db: Database, tenant: Tenant) -> None:
    clock.freeze(NOW)
    created = _create(client, tenant.headers, scopes=["workspace:read", "workspace:manage"])
    assert created["last_used_at"] is None
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/api/v1/workspace", headers=headers).status_code == 200

    def stamped() -> datetime | None:
        with db.unit_of_work(read_only=True) as session:
            return session.get(ApiKey, created["id"]).last_used_at  # type: ignore[union-attr]

    assert stamped() == NOW
    # Within a minute: no write per request. Later: stamped again, by a write request this time.
    clock.advance(timedelta(seconds=30))
    API_KEY_CACHE.clear()
    client.get("/api/v1/workspace", headers=headers)
    assert stamped() == NOW
    clock.advance(timedelta(minutes=5))
    API_KEY_CACHE.clear()
    assert client.patch("/api/v1/workspace", json={"name": "Acme 2"}, headers=headers).status_code == 200
    assert stamped() == NOW + timedelta(minutes=5, seconds=30)


def test_stamping_during_a_write_does_not_wait_for_the_requests_own_lock(
    settings: Settings, db: Database, tenant: Tenant
) -> None:
    """Regression: on SQLite the stamp ran in a second write transaction inside the request's own and
    waited out busy_timeout (30 s by default), then failed the request with a 500."""
    quick = settings.model_copy(update={"sqlite_busy_timeout_ms": 2000})
    with TestClient(create_app(quick, db=db), base_url="https://testserver") as client:
        response = client.post("/api/v1/api-keys", json={"name": "first use is a write"}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    with db.unit_of_work(read_only=True) as session:
        key = session.scalars(select(ApiKey).where(ApiKey.key_hash == token_digest(tenant.api_key))).one()
        assert key.last_used_at is not None


def test_revoked_and_expired_keys_are_401(client: TestClient, db: Database, tenant: Tenant) -> None:
    clock.freeze(NOW)
    doomed = _create(client, tenant.headers, name="doomed", scopes=["workspace:read"])
    doomed_headers = {"Authorization": f"Bearer {doomed['key']}"}
    assert client.get("/api/v1/workspace", headers=doomed_headers).status_code == 200  # now cached
    revoked = client.delete(f"/api/v1/api-keys/{doomed['id']}", headers=tenant.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = client.get("/api/v1/workspace", headers=doomed_headers)
    assert response.status_code == 401  # at once, in this process, despite the cache
    assert response.json()["code"] == "unauthenticated"

    expires_at = (NOW + timedelta(hours=1)).isoformat()
    expiring = _create(client, tenant.headers, name="expiring", scopes=["workspace:read"], expires_at=expires_at)
    expiring_headers = {"Authorization": f"Bearer {expiring['key']}"}
    assert client.get("/api/v1/workspace", headers=expiring_headers).status_code == 200
    clock.advance(timedelta(hours=2))
    API_KEY_CACHE.clear()  # the cache holds a key no longer than its remaining life or a few seconds
    assert client.get("/api/v1/workspace", headers=expiring_headers).status_code == 401


def test_a_revoked_key_is_listed_as_revoked_and_revoking_twice_is_harmless(client: TestClient, tenant: Tenant) -> None:
    key = _create(client, tenant.headers, name="twice")
    first = client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.headers).json()["revoked_at"]
    second = client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.headers).json()["revoked_at"]
    assert first == second
    listed = {k["name"]: k for k in client.get("/api/v1/api-keys", headers=tenant.headers).json()}
    assert listed["twice"]["revoked_at"] == first
    assert listed["test"]["revoked_at"] is None
