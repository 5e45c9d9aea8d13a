"""Browser-facing security over the whole route table: password hashing parameters, cookie flags, a CSRF
token on every state-changing form (and cookie-authenticated API write), and no GET that changes state."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

from argon2 import extract_parameters
from argon2.low_level import Type
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.models import Base
from patronage.kit.security import hash_password
from patronage.workspaces.auth import MEMBER_COOKIE, SESSION_COOKIE
from patronage.workspaces.models import User
from tests.battery.routes import PARAM, Route, api_routes, fill, seed_workspace, web_routes
from tests.conftest import Tenant
from tests.rewards.helpers import member_headers
from tests.web.conftest import member_cookie, sign_in

# Bookkeeping a read may stamp: when a key or session was last used. Not state a user changes.
VOLATILE = {("api_keys", "last_used_at"), ("staff_sessions", "last_seen_at"), ("member_sessions", "last_seen_at")}


def test_passwords_are_argon2id_with_owasp_parameters(db: Database, tenant: Tenant) -> None:
    with db.unit_of_work(read_only=True) as session:
        stored = session.scalars(select(User.password_hash).where(User.id == tenant.owner_id)).one()
    for encoded in (stored, hash_password("another password")):
        params = extract_parameters(encoded)
        assert params.type is Type.ID, encoded
        assert params.memory_cost >= 19_456 and params.time_cost >= 2, params


def _cookie(response: Any, name: str) -> Any:
    for header in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar[name]
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


def _flags(morsel: Any) -> tuple[bool, bool, str]:
    return bool(morsel["secure"]), bool(morsel["httponly"]), str(morsel["samesite"]).lower()


def test_session_cookies_are_secure_httponly_samesite(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    login = client.post("/api/v1/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password})
    assert login.status_code == 200, login.text
    assert _flags(_cookie(login, SESSION_COOKIE)) == (True, True, "lax")
    page = client.get("/login")  # the sign-in form's double-submit token
    assert _flags(_cookie(page, "patronage_login_csrf")) == (True, True, "lax")
    with TestClient(client.app, base_url="https://testserver") as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        signed_in = browser.post("/login", data={"email": tenant.owner_email, "password": tenant.owner_password,
                                                 "csrf_token": token.group(1)}, follow_redirects=False)
        assert _flags(_cookie(signed_in, SESSION_COOKIE)) == (True, True, "lax")
    # Members: the magic-link exchange (API) sets the member cookie the same way.
    from tests.web.conftest import make_customer

    make_customer(db, tenant.workspace_id, "ana@example.com", external_id="c-1")
    from patronage.members import service as members
    from patronage.workspaces.repository import get_workspace

    with db.unit_of_work() as session:
        workspace = get_workspace(session, tenant.workspace_id)
        assert workspace is not None
        link = members.request_magic_link(session, settings, workspace, "ana@example.com", ip=None)
    exchanged = client.post(f"/api/v1/portal/{tenant.slug}/sessions", json={"token": link})
    assert exchanged.status_code == 201, exchanged.text
    assert _flags(_cookie(exchanged, MEMBER_COOKIE)) == (True, True, "lax")
    with TestClient(client.app, base_url="https://testserver") as visitor:
        portal_form = visitor.get(f"/portal/{tenant.slug}/sign-in")
    assert _flags(_cookie(portal_form, "patronage_portal_csrf")) == (True, True, "lax")


def _form_fields(route: Route) -> dict[str, str]:
    return {(p.alias or p.name): "12345678" for p in route.route.dependant.body_params}


def test_every_state_changing_form_needs_its_csrf_token(
    app: FastAPI, client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    values = seed_workspace(client, db, tenant, "acme")
    staff = TestClient(app, base_url="https://testserver")
    sign_in(staff, tenant.owner_email, tenant.owner_password)
    member = TestClient(app, base_url="https://testserver")
    member.cookies.set(MEMBER_COOKIE, member_cookie(db, settings, tenant.workspace_id, "ana@acme.example.com"))
    accepted = []
    writes = [r for r in web_routes(app) if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    assert len(writes) > 30
    for route in writes:
        who = member if route.path.startswith("/portal/") else staff
        url = PARAM.sub(lambda m: str(values.get(m.group(1), 1)), route.path)
        fields = {k: v for k, v in _form_fields(route).items() if k not in ("csrf_token", "form_token")}
        response = who.request(route.method, url, data=fields, follow_redirects=False)
        if response.status_code not in (403, 422):
            accepted.append((route.method, route.path, response.status_code))
        elif response.status_code == 422 and "csrf_token" not in response.text and "form_token" not in response.text:
            accepted.append((route.method, route.path, "422 for something else"))
    assert accepted == [], accepted
    # Cookie-authenticated API writes need the X-CSRF-Token header too (API keys do not: no ambient authority).
    api_cookie = TestClient(app, base_url="https://testserver")
    assert api_cookie.post("/api/v1/auth/login", json={"email": tenant.owner_email,
                                                       "password": tenant.owner_password}).status_code == 200
    refused = []
    for route in api_routes(app):
        if route.method in ("POST", "PUT", "PATCH", "DELETE") and route.access.kind in ("permission", "customer"):
            response = api_cookie.request(route.method, fill(route, values), json={})
            if (response.status_code, response.json().get("code")) != (403, "csrf_failed"):
                refused.append((route.method, route.path, response.status_code))
    assert refused == [], refused
    for c in (staff, member, api_cookie):
        c.close()


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.unit_of_work(read_only=True) as session:
        out = {}
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if (table.name, c.name) not in VOLATILE]
            out[table.name] = [tuple(r) for r in session.execute(select(*columns).order_by(*table.primary_key.columns))]
        return out


def test_no_get_changes_state(app: FastAPI, client: TestClient, db: Database, settings: Settings,
                              tenant: Tenant) -> None:
    """Every GET of the route table, signed in as whoever it serves, with real ids: the database is the
    same before and after (row counts and contents, but for the last-used stamps of keys and sessions)."""
    values = seed_workspace(client, db, tenant, "acme")
    staff = TestClient(app, base_url="https://testserver")
    sign_in(staff, tenant.owner_email, tenant.owner_password)
    member = TestClient(app, base_url="https://testserver")
    member.cookies.set(MEMBER_COOKIE, member_cookie(db, settings, tenant.workspace_id, "ana@acme.example.com"))
    member_api = member_headers(db, tenant.workspace_id, values["customer_id"])
    values = {**values, "token": "x" * 43}
    gets = [r for r in api_routes(app) + web_routes(app) if r.method == "GET"]
    before = snapshot(db)
    answered = {}
    for route in gets:
        url = PARAM.sub(lambda m: str(values.get(m.group(1), 1)), route.path) if not route.path.startswith("/api/") \
            else fill(route, values)
        if route.path.startswith("/api/"):
            headers = member_api if route.access.kind == "member" else tenant.headers
            response = client.get(url, headers=headers)
        else:
            response = (member if route.path.startswith("/portal/") else staff).get(url, follow_redirects=False)
        answered[route.path] = response.status_code
        after = snapshot(db)
        changed = sorted(t for t in before if before[t] != after[t])
        assert changed == [], f"GET {route.path} changed {changed}"
    assert sum(1 for s in answered.values() if s == 200) > 80, answered
    for c in (staff, member):
        c.close()
