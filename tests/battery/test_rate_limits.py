"""Rate limits answer 429 with Retry-After (sign-in, magic links, redemptions per customer, coupon
validation per caller), and every list's page size is capped (a limit above the maximum is a 422)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from patronage.kit import clock, ratelimit
from patronage.kit.db import Database
from patronage.kit.pagination import MAX_PAGE_SIZE
from tests.battery.routes import api_routes, fill, seed_workspace
from tests.battery.test_concurrency import reward
from tests.conftest import Tenant
from tests.rewards.helpers import new_customer

# Mid-window for every limit (1, 5 and 15 minutes): the test never straddles a window's end.
NOW = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)


def hammer(send: Any, limit: ratelimit.Limit) -> list[Any]:
    """``limit.max_requests`` requests that are let through, then one that must be refused."""
    clock.freeze(NOW)
    responses = [send() for _ in range(limit.max_requests + 1)]
    assert all(r.status_code != 429 for r in responses[:-1]), [r.status_code for r in responses]
    refused = responses[-1]
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "rate_limited"
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= int(limit.per.total_seconds())
    return responses


def test_sign_in_is_rate_limited_per_account(client: TestClient, tenant: Tenant) -> None:
    wrong = {"email": tenant.owner_email, "password": "not the password"}
    hammer(lambda: client.post("/api/v1/auth/login", json=wrong), ratelimit.LOGIN)
    # The right password does not get through either until the window ends: no online guessing.
    right = client.post("/api/v1/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password})
    assert right.status_code == 429


def test_magic_link_requests_are_rate_limited(client: TestClient, tenant: Tenant) -> None:
    url = f"/api/v1/portal/{tenant.slug}/magic-link"
    hammer(lambda: client.post(url, json={"email": "someone@example.com"}), ratelimit.MAGIC_LINK)


def test_redemptions_are_rate_limited_per_customer(client: TestClient, db: Database, tenant: Tenant) -> None:
    customer = new_customer(db, tenant.workspace_id, email="busy@example.com")
    reward_id = reward(db, tenant.workspace_id, 10)
    url = f"/api/v1/customers/{customer}/rewards/{reward_id}/redeem"
    counter = iter(range(1000))
    hammer(lambda: client.post(url, json={"request_id": f"r{next(counter)}"}, headers=tenant.headers),
           ratelimit.REDEMPTION)
    other = new_customer(db, tenant.workspace_id, email="calm@example.com")  # per customer: others unaffected
    calm = client.post(f"/api/v1/customers/{other}/rewards/{reward_id}/redeem", json={"request_id": "x"},
                       headers=tenant.headers)
    assert calm.status_code == 409 and calm.json()["code"] == "insufficient_points"


def test_coupon_validation_is_rate_limited_per_caller(client: TestClient, tenant: Tenant) -> None:
    body = {"code": "GUESS-0000", "order_amount": "10.00"}
    hammer(lambda: client.post("/api/v1/coupons/validate", json=body, headers=tenant.headers),
           ratelimit.COUPON_VALIDATION)


def test_every_page_size_is_capped(app: FastAPI, client: TestClient, db: Database, tenant: Tenant) -> None:
    values = seed_workspace(client, db, tenant, "acme")
    openapi = app.openapi()
    paged, wrong = 0, []
    for route in api_routes(app):
        if route.method != "GET" or route.access.kind == "member":
            continue
        parameters = openapi["paths"][route.template]["get"].get("parameters", [])
        limit = next((p for p in parameters if p["name"] == "limit" and p["in"] == "query"), None)
        if limit is None:
            continue
        paged += 1
        schema = limit["schema"].get("anyOf", [limit["schema"]])[0]
        too_many = int(schema.get("maximum", MAX_PAGE_SIZE)) + 1
        response = client.get(fill(route, values), params={"limit": too_many}, headers=tenant.headers)
        errors = response.json().get("errors", []) if response.status_code == 422 else []
        if not any(e["field"] in ("limit", "query.limit") for e in errors):
            wrong.append((route.path, too_many, response.status_code, response.text[:200]))
    assert paged > 20
    assert wrong == [], wrong
