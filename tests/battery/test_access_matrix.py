"""The authorisation matrix, generated from the route table (every APIRoute, its ``require(...)``,
``customer_access(...)`` or ``require_member`` dependency), against real objects of a second workspace:

- workspace A's all-scopes key on every route addressing one of workspace B's objects: 404, and none of
  B's rows changes;
- a member (customer) token on every staff route: 403;
- an API key holding every scope but the one a route needs: 403;
- a route without authentication is on an explicit allowlist (API) or answers an anonymous visitor only
  with a sign-in redirect (console, portal): a new public route fails this test until it is listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.kit.db import Database
from patronage.kit.models import Base
from patronage.workspaces import service
from patronage.workspaces.permissions import ALL
from tests.battery.routes import (
    PARAM,
    Route,
    all_routes,
    api_routes,
    fill,
    minimal,
    request_schema,
    seed_workspace,
    web_routes,
)
from tests.conftest import Tenant
from tests.rewards.helpers import member_headers

# API routes anyone may call. Each is authenticated otherwise: a password, a magic link, a signed webhook.
PUBLIC_API = {
    ("POST", "/api/v1/auth/login"),  # email + password, rate-limited
    ("POST", "/api/v1/portal/{slug}/magic-link"),  # answers the same whether or not the email is known
    ("POST", "/api/v1/portal/{slug}/sessions"),  # trades a single-use magic-link token
    ("POST", "/api/v1/integrations/shopify/webhooks"),  # HMAC-signed by Shopify with the shop's secret
}
# Non-API routes anyone may call: health and metrics, the API's documentation, sign-in pages, the
# portal's public shell (its service worker, manifest and offline page).
PUBLIC_OTHER = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("POST", "/console/language"),
    ("GET", "/portal/{slug}/sign-in"), ("POST", "/portal/{slug}/sign-in"),
    ("GET", "/portal/{slug}/auth/{token}"), ("POST", "/portal/{slug}/auth"),
    ("GET", "/portal/{slug}"),  # a redirect to /portal/{slug}/, which wants a member
    ("GET", "/portal/{slug}/manifest.webmanifest"), ("GET", "/portal/{slug}/sw.js"),
    ("GET", "/portal/{slug}/offline"),
}
# Writes by a natural key that lives in the caller's own workspace: A writing "B's" name writes A's own.
OWN_NAMESPACE = {("PUT", "/api/v1/event-types/{name}"), ("DELETE", "/api/v1/event-types/{name}")}
# Shopify shop domains are unique across workspaces: A naming B's shop is refused (409), never a takeover.
GLOBAL_NAMES = {("PUT", "/api/v1/integrations/shopify/shops/{shop_domain}"): 409}
# Bodies the generic minimal body does not satisfy (the route validates more than the schema says);
# ``v`` holds the seeded workspace's values.
BODIES: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("POST", "/api/v1/customers/{customer_id}/merge"): lambda v: {"duplicate_id": v["other_customer_id"]},
    ("POST", "/api/v1/customers/{customer_id}/points/adjustments"):
        lambda v: {"points": 1, "reason": "probe", "source_id": "probe"},
    ("PUT", "/api/v1/customers/{customer_id}/tier/override"):
        lambda v: {"tier_id": None, "until": "2099-01-01T00:00:00Z", "reason": "probe"},
}


def body_for(openapi: dict[str, Any], route: Route, values: dict[str, Any]) -> dict[str, Any] | None:
    if (route.method, route.template) in BODIES:
        return BODIES[(route.method, route.template)](values)
    schema = request_schema(openapi, route)
    return None if schema is None else minimal(openapi, schema)


def call(client: TestClient, route: Route, url: str, headers: dict[str, str], body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return client.request(route.method, url, **kwargs)


def rows_of(db: Database, workspace_id: int) -> dict[str, list[tuple[Any, ...]]]:
    with db.unit_of_work(read_only=True) as session:
        return {t.name: [tuple(r) for r in session.execute(select(t).where(t.c.workspace_id == workspace_id)
                                                            .order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables if "workspace_id" in t.c}


def key_with(db: Database, tenant: Tenant, scopes: list[str]) -> dict[str, str]:
    with db.unit_of_work() as session:
        _, secret = service.create_api_key(session, tenant.workspace_id, name=f"scopes-{len(scopes)}", scopes=scopes,
                                           actor="test", actor_permissions=frozenset(p.value for p in ALL),
                                           created_by_user_id=None)
    return {"Authorization": f"Bearer {secret}"}


def test_routes_without_authentication_are_an_explicit_allowlist(app: FastAPI, client: TestClient,
                                                                  tenant: Tenant) -> None:
    open_api = {(r.method, r.path) for r in api_routes(app) if r.access.kind == "none"}
    assert open_api == PUBLIC_API, "a new API route without require(...): add auth, or list it in PUBLIC_API"
    leaks = []
    for route in web_routes(app):
        if (route.method, route.path) in PUBLIC_OTHER:
            continue
        url = PARAM.sub(lambda m: {"slug": tenant.slug}.get(m.group(1), "1"), route.path)
        response = client.request(route.method, url, follow_redirects=False)
        signin = response.status_code in (302, 303) and response.headers["location"].split("?")[0].endswith(
            ("/login", "/sign-in"))
        if not signin and response.status_code < 400:  # refused (401, 403, a 422 for the missing form) is fine
            leaks.append((route.method, route.path, response.status_code))
    assert leaks == [], "routes that answer anonymous visitors; protect them or list them in PUBLIC_OTHER"
    listed = {(r.method, r.path) for r in all_routes(app)}
    assert listed >= PUBLIC_API | PUBLIC_OTHER, sorted((PUBLIC_API | PUBLIC_OTHER) - listed)


def test_workspace_a_gets_404_for_every_object_of_workspace_b(
    app: FastAPI, client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    b = seed_workspace(client, db, other_tenant, "globex")
    openapi = app.openapi()
    before = rows_of(db, other_tenant.workspace_id)
    wrong, checked = [], 0
    for route in api_routes(app):
        if not route.params or route.access.kind in ("none", "member") or (route.method, route.path) in OWN_NAMESPACE:
            continue
        if route.params == ["slug"]:
            continue
        response = call(client, route, fill(route, b), tenant.headers, body_for(openapi, route, b))
        checked += 1
        if response.status_code != GLOBAL_NAMES.get((route.method, route.template), 404):
            wrong.append((route.method, route.path, response.status_code, response.text[:300]))
    assert checked > 70
    assert wrong == [], "\n".join(map(str, wrong))
    after = rows_of(db, other_tenant.workspace_id)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert changed == {}, f"workspace A's requests changed workspace B's rows: {sorted(changed)}"


def test_members_get_403_on_every_staff_route(app: FastAPI, client: TestClient, db: Database, tenant: Tenant) -> None:
    a = seed_workspace(client, db, tenant, "acme")
    member = member_headers(db, tenant.workspace_id, a["customer_id"])
    wrong, checked = [], 0
    for route in api_routes(app):
        if route.access.kind != "permission":
            continue
        response = call(client, route, fill(route, a), member)
        checked += 1
        if response.status_code != 403:
            wrong.append((route.method, route.path, response.status_code))
    assert checked > 100
    assert wrong == [], wrong
    # Member routes and the member's own customer routes answer; someone else's customer is a 404.
    own = client.get(f"/api/v1/customers/{a['customer_id']}/loyalty", headers=member)
    assert own.status_code == 200, own.text
    other = client.get(f"/api/v1/customers/{a['customer_id'] + 1}/loyalty", headers=member)
    assert other.status_code == 404
    assert client.get("/api/v1/portal/points", headers=member).status_code == 200
    # ... and staff credentials are not members.
    assert client.get("/api/v1/portal/points", headers=tenant.headers).status_code == 403


def test_keys_without_the_needed_scope_get_403(app: FastAPI, client: TestClient, db: Database,
                                              tenant: Tenant) -> None:
    a = seed_workspace(client, db, tenant, "acme")
    by_permission: dict[str, list[Route]] = {}
    for route in api_routes(app):
        if route.access.kind in ("permission", "customer"):
            by_permission.setdefault(str(route.access.permission), []).append(route)
    assert len(by_permission) >= 12
    wrong = []
    for permission, routes in sorted(by_permission.items()):
        headers = key_with(db, tenant, sorted(p.value for p in ALL if p.value != permission))
        for route in routes:
            response = call(client, route, fill(route, a), headers)
            if response.status_code != 403:
                wrong.append((permission, route.method, route.path, response.status_code))
    assert wrong == [], wrong

