"""Console and portal security, checked over the whole route table: CSRF on every form POST, no GET
changes state, members never reach the console, another workspace's objects are 404."""

from __future__ import annotations

import importlib
import re
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker
from patronage.kit.models import Base
from patronage.referrals.models import ReferralCode
from patronage.web import routes
from patronage.workspaces.auth import MEMBER_COOKIE
from tests.conftest import Tenant, make_tenant
from tests.web import seed
from tests.web.conftest import Staff, make_customer, member_cookie

PARAM = re.compile(r"{([a-z_]+)}")


def web_routes(client: TestClient, method: str, prefix: str) -> list[APIRoute]:
    """The browser routes of the modules web/routes.py mounts, whose module starts with ``prefix``."""
    found = []
    for name in [*routes.CONSOLE, *routes.PORTAL]:
        if name.startswith(prefix):
            found += [r for r in importlib.import_module(name).router.routes
                      if isinstance(r, APIRoute) and method in r.methods]
    return found


def fill(path: str, values: dict[str, Any]) -> str:
    return PARAM.sub(lambda m: str(values.get(m.group(1), 1)), path)


def form_fields(route: APIRoute) -> dict[str, str]:
    return {(p.alias or p.name): "12345678" for p in route.dependant.body_params}


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.unit_of_work(read_only=True) as session:
        return {t.name: [tuple(row) for row in session.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables}


def test_every_console_form_post_needs_the_csrf_token(staff: Staff, tenant: Tenant) -> None:
    routes = web_routes(staff.client, "POST", "patronage.web.console")
    assert len(routes) > 25
    for route in routes:
        if route.path in ("/login", "/logout"):
            continue
        data = {**form_fields(route), "csrf_token": "not-the-token"}
        response = staff.client.post(fill(route.path, {}), data=data, follow_redirects=False)
        assert response.status_code == 403, (route.path, response.status_code, response.text[:300])
        assert "csrf_failed" in response.text, route.path
        missing = staff.client.post(fill(route.path, {}), data={k: v for k, v in data.items() if k != "csrf_token"},
                                    follow_redirects=False)
        assert missing.status_code in (403, 422), route.path  # no token: refused before anything runs


def test_sign_in_forms_need_their_double_submit_token(client: TestClient, tenant: Tenant) -> None:
    assert client.post("/login", data={"email": "x@y.z", "password": "p", "csrf_token": "forged"}).status_code == 403
    forged = {"email": "ana@example.com", "form_token": "forged"}
    assert client.post(f"/portal/{tenant.slug}/sign-in", data=forged).status_code == 403
    assert client.post(f"/portal/{tenant.slug}/auth", data={"token": "x" * 20, "form_token": "f"}).status_code == 403


def test_every_member_form_post_needs_the_member_csrf_token(client: TestClient, tenant: Tenant, member: int) -> None:
    routes = [r for r in web_routes(client, "POST", "patronage.web.portal")
              if not r.path.endswith(("/sign-in", "/auth"))]
    assert len(routes) >= 5
    for route in routes:
        data = {**form_fields(route), "csrf_token": "not-the-token"}
        response = client.post(fill(route.path, {"slug": tenant.slug}), data=data, follow_redirects=False)
        assert response.status_code == 403, (route.path, response.status_code)


def test_no_get_changes_state(
    staff: Staff, tenant: Tenant, db: Database, settings: Settings
) -> None:
    client, headers = staff.client, tenant.headers
    program = seed.setup_program(client, headers)
    customer_id = seed.customer(client, headers, "c-9", "bea@example.com")
    assert client.post("/api/v1/orders", json=seed.order("o-1", "c-9"), headers=headers).status_code == 201
    Worker(db, settings).drain()
    redeemed = client.post(f"/api/v1/customers/{customer_id}/rewards/{program.reward_id}/redeem", json={},
                           headers=headers)
    assert redeemed.status_code == 201, redeemed.text
    hook = client.post("/api/v1/webhooks", json={"url": "https://example.com/h"}, headers=headers).json()
    backtest = client.post("/api/v1/earning/backtests", headers=headers, json={
        "rule_set_id": program.rule_set_id, "version": 1, "date_from": "2024-01-01T00:00:00Z",
        "date_to": "2024-12-31T00:00:00Z"}).json()
    client.cookies.set(MEMBER_COOKIE, member_cookie(db, settings, tenant.workspace_id, "bea@example.com"))
    with db.unit_of_work() as session:  # a fresh, unused magic link to open
        from patronage.members import service as members
        from patronage.workspaces.repository import get_workspace

        workspace = get_workspace(session, tenant.workspace_id)
        assert workspace is not None
        link_token = members.request_magic_link(session, settings, workspace, "bea@example.com", ip=None)
        from patronage.referrals import service as referrals

        referral_code = referrals.ensure_code(session, tenant.workspace_id, customer_id).code
    values = {"customer_id": customer_id, "rule_set_id": program.rule_set_id, "reward_id": program.reward_id,
              "redemption_id": redeemed.json()["id"], "endpoint_id": hook["id"], "backtest_id": backtest["id"],
              "slug": tenant.slug, "token": link_token, "code": referral_code}
    before = snapshot(db)
    visited = 0
    for route in web_routes(client, "GET", "patronage.web"):
        if route.path == "/r/{code}":
            continue  # the one exception, below
        response = client.get(fill(route.path, values), follow_redirects=False)
        assert response.status_code in (200, 204, 303, 307), (route.path, response.status_code, response.text[:500])
        visited += 1
    assert visited > 30
    assert snapshot(db) == before
    # The referral landing page counts the visit for the referral statistics, and changes nothing else
    # (but its rate-limit counters, kept in the database on PostgreSQL).
    assert client.get(f"/r/{referral_code}").status_code == 200
    after = snapshot(db)
    changed = {name for name in after if after[name] != before[name]}
    assert changed - {"rate_limit_counters"} == {"referral_codes"}
    clicks = ReferralCode.__table__.c.keys().index("clicks")
    assert [row[clicks] for row in after["referral_codes"]] == [row[clicks] + 1 for row in before["referral_codes"]]
    # Opening the emailed link spent nothing: it still signs in.
    with db.unit_of_work() as session:
        from patronage.members import service as members

        assert link_token is not None
        members.consume_magic_link(session, settings, tenant.workspace_id, link_token)


def test_members_cannot_open_console_pages(client: TestClient, tenant: Tenant, member: int) -> None:
    for route in web_routes(client, "GET", "patronage.web.console"):
        if route.path == "/login":
            continue
        response = client.get(fill(route.path, {"customer_id": member}), follow_redirects=False)
        assert response.status_code == 303, (route.path, response.status_code)
        assert response.headers["location"].startswith("/login"), route.path
    # The API refuses a member's session for staff routes too.
    assert client.get("/api/v1/customers").status_code == 403


def test_other_workspaces_objects_are_404(staff: Staff, tenant: Tenant, db: Database, settings: Settings) -> None:
    other = make_tenant(db, "globex")
    program = seed.setup_program(staff.client, other.headers)
    theirs = seed.customer(staff.client, other.headers, "g-1", "gil@example.com")
    hook = staff.client.post("/api/v1/webhooks", json={"url": "https://example.com/g"}, headers=other.headers).json()
    for path in (f"/console/customers/{theirs}", f"/console/customers/{theirs}/timeline",
                 f"/console/program/rules/{program.rule_set_id}", f"/console/settings/webhooks/{hook['id']}"):
        assert staff.client.get(path).status_code == 404, path
    adjust = staff.client.post(f"/console/customers/{theirs}/points",
                               data={"csrf_token": staff.csrf, "points": "5", "reason": "x", "adjust_id": "a1b2"})
    assert adjust.status_code == 404
    # A member of acme: their cookie means nothing in globex's portal, and globex's redemptions are 404.
    mine = make_customer(db, tenant.workspace_id, "ana@example.com", external_id="c-1")
    assert mine
    staff.client.cookies.set(MEMBER_COOKIE, member_cookie(db, settings, tenant.workspace_id, "ana@example.com"))
    assert staff.client.get(f"/portal/{tenant.slug}/").status_code == 200
    other_portal = staff.client.get(f"/portal/{other.slug}/", follow_redirects=False)
    assert other_portal.headers["location"] == f"/portal/{other.slug}/sign-in"
    assert staff.client.post("/api/v1/orders", json=seed.order("g-o", "g-1"), headers=other.headers).status_code == 201
    Worker(db, settings).drain()
    redeemed = staff.client.post(f"/api/v1/customers/{theirs}/rewards/{program.reward_id}/redeem", json={},
                                 headers=other.headers)
    assert redeemed.status_code == 201, redeemed.text
    assert staff.client.get(f"/portal/{tenant.slug}/redemptions/{redeemed.json()['id']}").status_code == 404
    assert staff.client.get(f"/portal/{tenant.slug}/rewards/{program.reward_id}").status_code == 404
    assert staff.client.get("/portal/no-such-shop/sign-in").status_code == 404


def test_roles_limit_the_console(client: TestClient, tenant: Tenant, db: Database) -> None:
    from patronage.workspaces import service
    from patronage.workspaces.permissions import Role
    from tests.web.conftest import sign_in

    with db.unit_of_work() as session:
        user = service.create_user(session, email="analyst@example.com", password="correct horse battery")
        service.add_member(session, tenant.workspace_id, user, Role.ANALYST, actor="test")
    csrf = sign_in(client, "analyst@example.com", "correct horse battery")
    home = client.get("/")
    assert home.status_code == 200
    assert "/console/settings/api-keys" not in home.text  # the menu shows only what the role may open
    assert client.get("/console/settings/api-keys").status_code == 403
    assert client.get("/console/customers").status_code == 200
    refused = client.post("/console/program/tiers", data={"csrf_token": csrf, "name": "Gold", "threshold": "1"})
    assert refused.status_code == 403
