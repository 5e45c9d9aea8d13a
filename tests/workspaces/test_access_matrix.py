"""Every API route, walked from the OpenAPI document: none answers without credentials, and a key
holding no scope can do nothing. A new public route must be added to PUBLIC here, on purpose."""

from __future__ import annotations

import re
from functools import cache

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Tenant

from patronage.app import create_app
from patronage.config import Settings

# Routes anyone may call: signing in, for staff and for members.
PUBLIC = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/portal/{slug}/magic-link"),
    ("POST", "/api/v1/portal/{slug}/sessions"),
}
# Routes any signed-in caller may call, whatever their permissions.
ANY_PRINCIPAL = {("POST", "/api/v1/auth/logout")}

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # routing, not storage


@cache
def _all_operations() -> tuple[tuple[str, str, str], ...]:
    """(method, path template, a concrete URL) of every documented operation; the document depends on
    the code only, so it is built once for the module."""
    paths = create_app(Settings(database_url="sqlite://")).openapi()["paths"]
    return tuple(
        (method.upper(), path, re.sub(r"\{[^}]+\}", "1", path)) for path, item in paths.items() for method in item
    )


def _operations(client: TestClient) -> tuple[tuple[str, str, str], ...]:
    operations = _all_operations()
    assert len(operations) > 10
    return operations


def test_no_route_answers_without_credentials(client: TestClient) -> None:
    open_routes = []
    for method, template, url in _operations(client):
        if (method, template) in PUBLIC:
            continue
        response = client.request(method, url)
        if response.status_code != 401:
            open_routes.append((method, template, response.status_code))
    assert open_routes == []


def test_public_routes_are_still_there(client: TestClient) -> None:
    found = {(method, template) for method, template, _ in _operations(client)}
    assert found >= PUBLIC | ANY_PRINCIPAL


def test_a_key_without_scopes_can_do_nothing(client: TestClient, tenant: Tenant) -> None:
    created = client.post("/api/v1/api-keys", json={"name": "no scopes", "scopes": []}, headers=tenant.headers)
    assert created.json()["scopes"] == []
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    allowed = []
    for method, template, url in _operations(client):
        if (method, template) in PUBLIC | ANY_PRINCIPAL:
            continue
        response = client.request(method, url, headers=headers)
        if response.status_code not in (401, 403):
            allowed.append((method, template, response.status_code))
    assert allowed == []
