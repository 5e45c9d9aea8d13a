"""Mass assignment: every JSON write body of the OpenAPI document (POST, PUT, PATCH), made valid and then
given fields a client must never set (``balance``, ``role``, ``tier``, ``workspace_id``, ``id``,
``points``...), is refused with a 422 naming each such field, and nothing is written."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from patronage.kit.db import Database
from tests.battery.routes import api_routes, fill, request_schema, row_counts, seed_workspace
from tests.battery.test_access_matrix import body_for
from tests.conftest import Tenant

FORBIDDEN = ("balance", "role", "tier", "workspace_id", "id", "points", "available", "lifetime_earned", "status",
             "is_admin", "permissions", "created_at", "customer_id", "erased_at")


def test_unknown_fields_in_every_write_body_are_422_and_write_nothing(
    app: FastAPI, client: TestClient, db: Database, tenant: Tenant
) -> None:
    values = seed_workspace(client, db, tenant, "acme")
    openapi = app.openapi()
    checked, wrong = 0, []
    for route in api_routes(app):
        if route.method not in ("POST", "PUT", "PATCH"):
            continue
        schema = request_schema(openapi, route)
        if schema is None or schema.get("type") != "object" or schema.get("additionalProperties", False) is not False:
            continue  # no JSON object body (none, a file upload), or a free-form one (none today)
        extra = {name: 1 for name in FORBIDDEN if name not in schema.get("properties", {})}
        body: dict[str, Any] = {**(body_for(openapi, route, values) or {}), **extra}
        before = row_counts(db)
        response = client.request(route.method, fill(route, values), json=body, headers=tenant.headers)
        checked += 1
        named = {e["field"] for e in response.json().get("errors", []) if e.get("type") == "extra_forbidden"} \
            if response.headers.get("content-type", "").startswith("application/problem+json") else set()
        if response.status_code != 422 or named != set(extra):
            wrong.append((route.method, route.path, response.status_code, sorted(set(extra) - named),
                          response.text[:200]))
        elif row_counts(db) != before:
            wrong.append((route.method, route.path, "wrote rows", {
                t: n for t, n in row_counts(db).items() if before[t] != n}))
    assert checked > 60
    assert wrong == [], "\n".join(map(str, wrong))
