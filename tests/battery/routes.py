"""The route table as data, for the tests generated from it (access matrix, mass assignment, GETs that
must not write): who may call each route, real ids to put in its path, and a minimal valid body."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, literal, select, text, union_all

from patronage.app import API_PREFIX
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent
from patronage.kit.models import Base
from patronage.webhooks import service as webhooks
from patronage.workspaces.auth import authenticate, require_member
from tests.conftest import Tenant

PARAM = re.compile(r"{([a-z_]+)(?::path)?}")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Access:
    kind: str  # "permission" (require), "customer" (member on self, or permission), "member", "signed_in", "none"
    permission: str | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    route: APIRoute

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    @property
    def template(self) -> str:
        """The path without converters: ``/orders/{external_id}`` for ``/orders/{external_id:path}``."""
        return self.path.replace(":path}", "}")

    @property
    def access(self) -> Access:
        return access_of(self.route.dependant)


def _calls(dependant: Dependant) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_calls(sub))
    return found


def access_of(dependant: Dependant) -> Access:
    calls = _calls(dependant)
    for call in calls:
        qualname = getattr(call, "__qualname__", "")
        permission = getattr(call, "required_permission", None)
        if call is require_member:
            return Access("member", "member:self")
        if permission and qualname.startswith("customer_access."):
            return Access("customer", str(permission))
        if permission:
            return Access("permission", str(permission))
    return Access("signed_in") if authenticate in calls else Access("none")


def all_routes(app: FastAPI) -> list[Route]:
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in sorted(context.methods or ()):
                routes.append(Route(method, str(context.path), route))
    return routes


def api_routes(app: FastAPI) -> list[Route]:
    return [r for r in all_routes(app) if r.path.startswith(API_PREFIX)]


def web_routes(app: FastAPI) -> list[Route]:
    return [r for r in all_routes(app) if not r.path.startswith(API_PREFIX)]


def fill(route: Route, values: dict[str, Any]) -> str:
    """The route's path with real values: ``values`` maps a parameter name, or "<path>:<name>" where one
    name means different things on different routes (an order's external id, a return's)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = values.get(f"{route.template}:{name}", values.get(name))
        if found is None:
            raise KeyError(f"no seeded value for {{{name}}} in {route.method} {route.path}")
        return str(found)

    return PARAM.sub(value, route.path)


# ---- minimal bodies from the OpenAPI document -------------------------------------------------------------
def request_schema(openapi: dict[str, Any], route: Route) -> dict[str, Any] | None:
    operation = openapi["paths"].get(route.template, {}).get(route.method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return resolve(openapi, content["application/json"]["schema"])


def resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


STRING_FORMATS = {"email": "someone@example.com", "date-time": "2025-01-15T10:00:00Z", "date": "2025-06-30",
                  "uri": "https://example.com/x", "time": "10:00:00"}


def minimal(openapi: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The smallest instance the schema accepts: required properties only, the first choice of each."""
    schema = resolve(openapi, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [resolve(openapi, s) for s in schema[key]]
            return minimal(openapi, next((s for s in options if s.get("type") != "null"), options[0]))
    if "allOf" in schema:
        return minimal(openapi, schema["allOf"][0])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: minimal(openapi, props[name]) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal(openapi, schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        if schema.get("format") in STRING_FORMATS:
            return STRING_FORMATS[schema["format"]]
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    return None


# ---- one object of every kind in a workspace ----------------------------------------------------------------
def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), (response.request.method, response.request.url, response.text)
    body: dict[str, Any] = response.json()
    return body


def seed_workspace(client: TestClient, db: Database, tenant: Tenant, tag: str) -> dict[str, Any]:
    """Create one object of each kind through the API; returns path-parameter values that address them."""
    h = tenant.headers

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        return _ok(client.post(f"{API_PREFIX}{url}", json=body, headers=h))

    def put(url: str, body: dict[str, Any]) -> dict[str, Any]:
        return _ok(client.put(f"{API_PREFIX}{url}", json=body, headers=h))

    v: dict[str, Any] = {"slug": tenant.slug, "version": 1}
    _ok(client.put(f"{API_PREFIX}/loyalty/settings", json={"return_window_days": 0}, headers=h))
    v["user_id"] = post("/staff", {"email": f"analyst@{tag}.example.com", "password": "correct horse battery",
                                   "role": "analyst"})["user_id"]
    v["key_id"] = post("/api-keys", {"name": f"{tag} integration"})["id"]
    customer = post("/customers", {"external_id": f"{tag}-c1", "email": f"ana@{tag}.example.com", "first_name": "Ana"})
    v["customer_id"] = customer["id"]
    other = v["other_customer_id"] = post("/customers", {"external_id": f"{tag}-c2",
                                                         "email": f"bo@{tag}.example.com"})["id"]
    v["identity_id"] = post(f"/customers/{v['customer_id']}/identities", {"kind": "device_id",
                                                                          "value": f"{tag}-device"})["id"]
    v["/api/v1/customer-attributes/{name}:name"] = post(
        "/customer-attributes", {"name": f"{tag}_shoe_size", "type": "number"})["name"]
    v["key"] = post("/consent-topics", {"key": f"{tag}_news", "name": "News"})["key"]
    endpoint = post("/webhooks", {"url": "http://127.0.0.1:9/hooks"})
    v["endpoint_id"] = endpoint["id"]
    v["sku"] = post("/products", {"sku": f"{tag}-SKU-1", "name": "Tea"})["result"]["sku"]
    v["/api/v1/orders/{external_id}:external_id"] = post("/orders", {
        "external_id": f"{tag}-o1", "customer_external_id": f"{tag}-c1", "placed_at": "2025-01-10T10:00:00Z",
        "lines": [{"line_id": "1", "sku": f"{tag}-SKU-1", "unit_price": "500.00", "quantity": 1}]})["result"][
        "external_id"]
    v["/api/v1/orders/{external_id}/status:external_id"] = v["/api/v1/orders/{external_id}:external_id"]
    v["/api/v1/returns/{external_id}:external_id"] = post("/returns", {
        "external_id": f"{tag}-r1", "order_external_id": f"{tag}-o1", "amount": "1.00"})["result"]["external_id"]
    put(f"/event-types/{tag}_review", {"properties_schema": {"type": "object"}})
    v["/api/v1/event-types/{name}:name"] = f"{tag}_review"
    v["/api/v1/events/{external_id}:external_id"] = post("/events", {
        "external_id": f"{tag}-e1", "type": f"{tag}_review", "occurred_at": "2025-01-11T10:00:00Z",
        "customer_external_id": f"{tag}-c1"})["result"]["external_id"]
    v["shop_domain"] = put(f"/integrations/shopify/shops/{tag}-shop.myshopify.com",
                           {"webhook_secret": "s" * 32})["shop_domain"]
    v["tier_id"] = post("/tiers", {"name": "Gold", "threshold": 100})["id"]
    v["reward_id"] = post("/rewards", {"name": "Tote", "kind": "free_product", "sku": "TOTE", "points_cost": 10})["id"]
    coupon_reward = post("/rewards", {"name": "5 off", "kind": "fixed_discount", "value": "5", "points_cost": 10})
    v["promotion_id"] = post("/promotions", {"name": "Spring", "code_type": "multi_use",
                                             "discount_kind": "free_shipping", "code": f"{tag.upper()}SPRING"})["id"]
    rules = {"stacking": "multiply", "rules": [{"key": "base", "name": "1 per EUR", "trigger": "order",
                                                "effect": {"type": "per_currency", "points": 1}}]}
    v["rule_set_id"] = post("/earning/rule-sets", {"name": "Base", "document": rules})["id"]
    _ok(client.post(f"{API_PREFIX}/earning/rule-sets/{v['rule_set_id']}/versions/1/publish", headers=h))
    _ok(client.post(f"{API_PREFIX}/customers/{v['customer_id']}/points/adjustments",
                    json={"points": 100, "reason": "seed", "source_id": f"{tag}-seed"}, headers=h))
    redemption = post(f"/customers/{v['customer_id']}/rewards/{v['reward_id']}/redeem", {"request_id": "seed-1"})
    v["redemption_id"] = redemption["id"]
    v["fulfilment_id"] = redemption["fulfilment"]["id"]
    coupon = post(f"/customers/{v['customer_id']}/rewards/{coupon_reward['id']}/redeem", {"request_id": "seed-2"})
    v["/api/v1/coupons/{code}:code"] = coupon["coupon"]["code"]
    put("/referrals/program", {"active": True})
    code = post(f"/customers/{v['customer_id']}/referral-code", {})["code"]
    v["/api/v1/referral-codes/{code}/clicks:code"] = code
    v["referral_id"] = post("/referrals", {"code": code, "referred_customer_id": other})["id"]
    v["backtest_id"] = post("/earning/backtests", {"rule_set_id": v["rule_set_id"], "version": 1,
                                                   "date_from": "2025-01-01T00:00:00Z",
                                                   "date_to": "2025-02-01T00:00:00Z"})["id"]
    v["segment_id"] = post("/segments", {"name": "Everyone", "kind": "static"})["id"]
    v["goal_id"] = post("/analytics/goals", {"name": "Orders", "kpi": "orders", "target": 10,
                                             "deadline": "2030-01-01"})["id"]
    test_event = _ok(client.post(f"{API_PREFIX}/webhooks/{v['endpoint_id']}/test", headers=h))["event_id"]
    with db.unit_of_work() as session:  # the fan-out job's work: a delivery row to address
        event_id = session.scalar(select(DomainEvent.id).where(DomainEvent.uid == test_event))
        assert event_id is not None
        v["delivery_id"] = webhooks.fan_out(session, tenant.workspace_id, event_id)[0].id
    with db.unit_of_work(read_only=True) as session:
        v["job_id"] = session.scalar(text("SELECT max(id) FROM jobs WHERE workspace_id = :ws"),
                                     {"ws": tenant.workspace_id})
    return v


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table, in one round trip."""
    tables = Base.metadata.sorted_tables
    stmt = union_all(*(select(literal(t.name).label("name"), func.count().label("n")).select_from(t)
                       for t in tables))
    with db.unit_of_work(read_only=True) as session:
        return {name: int(n) for name, n in session.execute(stmt)}
