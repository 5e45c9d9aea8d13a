"""Every error is RFC 9457 problem+json with a stable ``code``; bad input names the field; 500 is a bug."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from patronage.app import create_app
from patronage.config import Settings
from patronage.kit.db import Database
from patronage.workspaces.models import ApiKey, Membership, Workspace
from patronage.workspaces.permissions import Role
from tests.conftest import Tenant
from tests.kit.helpers import PASSWORD, add_user, count, login

PROBLEM_KEYS = {"type", "title", "status", "code", "detail", "instance"}


def assert_problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://patronage.dev/problems/{code}"
    return body


def api_keys(db: Database, workspace_id: int) -> int:
    return count(db, ApiKey, ApiKey.workspace_id == workspace_id)


# ---- routing ----------------------------------------------------------------------------------------
def test_unknown_route_is_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert body["instance"] == "/api/v1/no-such-thing"


def test_wrong_method_is_405_problem_with_allow(client: TestClient, tenant: Tenant) -> None:
    response = client.put("/api/v1/workspace", headers=tenant.headers)
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]  # Starlette names the first route of the path's methods


# ---- request bodies ---------------------------------------------------------------------------------
def test_malformed_json_is_400(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/api-keys", content=b'{"name": "k",', headers={**tenant.headers, "content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")
    assert api_keys(client.app.state.db, tenant.workspace_id) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "k", "scopes": "workspace:read"}, "scopes"),
        ({"name": "k", "scopes": ["workspace:read", "no:such-scope"]}, "scopes.1"),
        ({"name": "k", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "k", "expires_at": "2031-01-01T00:00:00"}, "expires_at"),  # no offset: ambiguous
        ({"name": 42}, "name"),
        ({}, "name"),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    client: TestClient, db: Database, tenant: Tenant, body: dict, field: str
) -> None:
    response = client.post("/api/v1/api-keys", json=body, headers=tenant.headers)
    problem = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == [field]
    assert field in problem["detail"]
    assert api_keys(db, tenant.workspace_id) == 1


def test_query_and_path_parameters_are_named_too(client: TestClient, tenant: Tenant) -> None:
    problem = assert_problem(
        client.delete("/api/v1/api-keys/not-a-number", headers=tenant.headers), 422, "validation_error"
    )
    assert problem["errors"][0]["field"] == "path.key_id"


def test_mass_assignment_is_refused_and_nothing_persists(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    # A key planted in another workspace, with scopes smuggled past the schema.
    response = client.post(
        "/api/v1/api-keys",
        json={"name": "sneaky", "workspace_id": other_tenant.workspace_id, "created_by_user_id": 1},
        headers=tenant.headers,
    )
    problem = assert_problem(response, 422, "validation_error")
    assert sorted(e["field"] for e in problem["errors"]) == ["created_by_user_id", "workspace_id"]
    assert all(e["type"] == "extra_forbidden" for e in problem["errors"])
    assert api_keys(db, tenant.workspace_id) == 1
    assert api_keys(db, other_tenant.workspace_id) == 1

    # A role through the workspace settings, an id through the staff role change.
    response = client.patch("/api/v1/workspace", json={"name": "Renamed", "role": "owner"}, headers=tenant.headers)
    assert assert_problem(response, 422, "validation_error")["errors"][0]["field"] == "role"
    response = client.patch(
        f"/api/v1/staff/{tenant.owner_id}",
        json={"role": "owner", "workspace_id": other_tenant.workspace_id},
        headers=tenant.headers,
    )
    assert assert_problem(response, 422, "validation_error")["errors"][0]["field"] == "workspace_id"
    with db.unit_of_work(read_only=True) as session:
        assert session.get(Workspace, tenant.workspace_id).name == "Acme"  # type: ignore[union-attr]
        assert count(db, Membership, Membership.workspace_id == other_tenant.workspace_id) == 1


# ---- size limits ------------------------------------------------------------------------------------
@pytest.fixture
def small_limit_client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"max_body_bytes": 1024}), db=db)
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


def _chunks(total: int, size: int = 256) -> Iterator[bytes]:
    body = b'{"name": "' + b"x" * total + b'"}'
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("idempotency_key", [None, "size-1"])
def test_oversized_body_is_413_by_content_length_and_by_stream(
    small_limit_client: TestClient, db: Database, tenant: Tenant, idempotency_key: str | None
) -> None:
    headers = {**tenant.headers, "content-type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    too_big = b'{"name": "' + b"x" * 2000 + b'"}'
    announced = small_limit_client.post("/api/v1/api-keys", content=too_big, headers=headers)
    assert_problem(announced, 413, "payload_too_large")
    # Chunked transfer: no Content-Length, the limit trips while the body streams in.
    streamed = small_limit_client.post("/api/v1/api-keys", content=_chunks(4000), headers=headers)
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "payload_too_large")
    # Just under the limit is fine.
    fine = small_limit_client.post("/api/v1/api-keys", content=_chunks(100), headers=headers)
    assert fine.status_code == 201, fine.text
    assert api_keys(db, tenant.workspace_id) == 2


# ---- tenancy and access -----------------------------------------------------------------------------
def test_another_workspaces_objects_are_404(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    with db.unit_of_work(read_only=True) as session:
        theirs = session.query(ApiKey).filter(ApiKey.workspace_id == other_tenant.workspace_id).one()
        their_key_id = theirs.id
    assert_problem(client.delete(f"/api/v1/api-keys/{their_key_id}", headers=tenant.headers), 404, "not_found")
    assert_problem(
        client.patch(f"/api/v1/staff/{other_tenant.owner_id}", json={"role": "analyst"}, headers=tenant.headers),
        404,
        "not_found",
    )
    assert_problem(client.delete(f"/api/v1/staff/{other_tenant.owner_id}", headers=tenant.headers), 404, "not_found")
    # Same answer as for ids that exist nowhere: no existence leak.
    assert_problem(client.delete("/api/v1/api-keys/987654", headers=tenant.headers), 404, "not_found")
    # Nothing changed over there.
    listed = client.get("/api/v1/api-keys", headers=other_tenant.headers).json()
    assert [k["revoked_at"] for k in listed] == [None]
    staff = client.get("/api/v1/staff", headers=other_tenant.headers).json()
    assert [(s["user_id"], s["role"]) for s in staff] == [(other_tenant.owner_id, "owner")]
    # And the workspace endpoint answers with the caller's own workspace only.
    assert client.get("/api/v1/workspace", headers=other_tenant.headers).json()["slug"] == "globex"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer pat_not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer something-else", "pat_no-scheme"],
)
def test_missing_or_invalid_credentials_are_401(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    assert_problem(client.get("/api/v1/workspace", headers=headers), 401, "unauthenticated")


def test_invalid_session_cookie_is_401(client: TestClient) -> None:
    client.cookies.set("patronage_session", "forged", domain="testserver")
    assert_problem(client.get("/api/v1/workspace"), 401, "unauthenticated")


def test_missing_permission_is_403_for_keys_and_roles(client: TestClient, db: Database, tenant: Tenant) -> None:
    created = client.post(
        "/api/v1/api-keys", json={"name": "read only", "scopes": ["workspace:read"]}, headers=tenant.headers
    )
    reader = {"Authorization": f"Bearer {created.json()['key']}"}
    assert client.get("/api/v1/workspace", headers=reader).status_code == 200
    body = assert_problem(client.get("/api/v1/api-keys", headers=reader), 403, "forbidden")
    assert "api_keys:manage" in body["detail"]
    assert_problem(client.patch("/api/v1/workspace", json={"name": "x"}, headers=reader), 403, "forbidden")

    add_user(db, tenant.workspace_id, "analyst@acme.test", Role.ANALYST)
    csrf = login(client, "analyst@acme.test", PASSWORD)
    assert client.get("/api/v1/workspace").status_code == 200
    assert_problem(
        client.post("/api/v1/api-keys", json={"name": "x"}, headers={"X-CSRF-Token": csrf}), 403, "forbidden"
    )
    assert api_keys(db, tenant.workspace_id) == 2


# ---- server errors ----------------------------------------------------------------------------------
@pytest.fixture
def failing_app(settings: Settings, db: Database) -> FastAPI:
    app = create_app(settings, db=db)

    @app.get("/__test__/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: do not leak")

    return app


def test_unhandled_exception_is_500_problem_with_request_id(failing_app: FastAPI) -> None:
    with TestClient(failing_app, base_url="https://testserver", raise_server_exceptions=False) as client:
        response = client.get("/__test__/boom", headers={"X-Request-Id": "req-123"})
    body = assert_problem(response, 500, "internal_error")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert body["request_id"] == "req-123"
    assert response.headers["x-request-id"] == "req-123"


# ---- transient database conflicts -------------------------------------------------------------------
def _deadlock(db: Database) -> None:
    """Two transactions taking two locks in opposite orders: PostgreSQL aborts one of them."""
    start = threading.Barrier(2)
    lost: list[DBAPIError] = []

    def take(first: int, second: int) -> None:
        try:
            with db.unit_of_work() as session:
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": first})
                start.wait(10)
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": second})
        except DBAPIError as exc:
            lost.append(exc)

    other = threading.Thread(target=take, args=(1, 2))
    other.start()
    take(2, 1)
    other.join(30)
    assert len(lost) == 1
    raise lost[0]


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_transaction_lost_to_a_deadlock_is_503_try_again(settings: Settings, db: Database) -> None:
    app = create_app(settings, db=db)
    app.get("/__test__/deadlock")(lambda: _deadlock(db))
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        response = client.get("/__test__/deadlock")
    assert_problem(response, 503, "concurrent_update")
    assert response.headers["retry-after"] == "1"


def test_other_database_errors_stay_500(settings: Settings, db: Database) -> None:
    app = create_app(settings, db=db)

    def broken() -> None:
        with db.unit_of_work() as session:
            session.execute(text("SELECT * FROM no_such_table"))

    app.get("/__test__/broken")(broken)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        response = client.get("/__test__/broken")
    body = assert_problem(response, 500, "internal_error")
    assert "no_such_table" not in body["detail"]
