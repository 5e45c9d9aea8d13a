"""Operations: liveness, readiness, Prometheus metrics by route template, request ids, API docs."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from patronage.app import create_app
from patronage.config import Settings
from patronage.kit.db import make_database
from tests.conftest import Tenant

# HTTP-level behaviour that does not depend on the database: the SQLite run is enough.
sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@sqlite
def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/nowhere?connect_timeout=2")
    db = make_database(settings)
    try:
        with TestClient(create_app(settings, db=db), base_url="https://testserver") as client:
            response = client.get("/readyz")
            assert client.get("/healthz").status_code == 200  # alive, just not ready
    finally:
        db.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def _counter(metrics: str, method: str, route: str, status: int) -> float:
    labels = f'method="{re.escape(method)}",route="{re.escape(route)}",status="{status}"'
    pattern = r"^patronage_http_requests_total\{" + labels + r"\} (\S+)$"
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@sqlite
def test_metrics_count_requests_by_route_template(client: TestClient, tenant: Tenant) -> None:
    before = client.get("/metrics").text
    client.get("/api/v1/workspace", headers=tenant.headers)
    client.delete("/api/v1/staff/424242", headers=tenant.headers)
    client.get("/no/such/path/8675309")
    client.get("/static/app.css")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    for method, route, status in [
        ("GET", "/api/v1/workspace", 200),
        ("DELETE", "/api/v1/staff/{user_id}", 404),
        ("GET", "unmatched", 404),
        ("GET", "/static/{path}", 200),
    ]:
        assert _counter(after, method, route, status) == _counter(before, method, route, status) + 1, route
    # Raw paths never become labels: the series count stays bounded.
    assert "424242" not in after
    assert "8675309" not in after
    assert "patronage_http_request_duration_seconds_bucket" in after


@sqlite
def test_request_id_is_echoed_or_minted(client: TestClient, tenant: Tenant) -> None:
    sent = client.get("/api/v1/workspace", headers={**tenant.headers, "X-Request-Id": "trace-abc.123"})
    assert sent.headers["x-request-id"] == "trace-abc.123"
    minted = client.get("/api/v1/workspace", headers=tenant.headers)
    assert re.fullmatch(r"[0-9a-f]{32}", minted.headers["x-request-id"])
    # Errors carry it too, and a hostile value is replaced rather than echoed.
    failed = client.get("/api/v1/workspace", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert failed.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{32}", failed.headers["x-request-id"])
    assert client.get("/nope", headers={"X-Request-Id": "r-404"}).headers["x-request-id"] == "r-404"


@sqlite
def test_api_docs_and_openapi_list_the_api(client: TestClient) -> None:
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    schema = client.get("/api/openapi.json").json()
    assert schema["info"]["title"] == "Patronage"
    paths = schema["paths"]
    for path in ("/api/v1/workspace", "/api/v1/auth/login", "/api/v1/api-keys", "/api/v1/api-keys/{key_id}",
                 "/api/v1/staff", "/api/v1/staff/{user_id}"):
        assert path in paths, path
    # Only the API: no operational or browser routes in the reference.
    assert not [p for p in paths if not p.startswith("/api/v1/")]
    # Errors are documented as problem+json.
    create_key = paths["/api/v1/api-keys"]["post"]["responses"]
    assert "application/problem+json" in create_key["422"]["content"]
    assert "Problem" in schema["components"]["schemas"]
