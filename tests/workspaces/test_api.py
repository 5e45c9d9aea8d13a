from __future__ import annotations

from fastapi.testclient import TestClient
from tests.conftest import Tenant


def test_api_key_authenticates_workspace(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/api/v1/workspace", headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "acme"
    assert body["currency"] == "EUR"


def test_missing_credentials_is_problem_401(client: TestClient, tenant: Tenant) -> None:
    response = client.get("/api/v1/workspace")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthenticated"
