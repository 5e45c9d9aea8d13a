"""Staff sign-in: the session cookie's flags, CSRF on cookie-authenticated writes, sign-out, the HTML form."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import Tenant
from tests.kit.helpers import login

from patronage.kit.db import Database
from patronage.workspaces.auth import SESSION_COOKIE
from patronage.workspaces.models import StaffSession, Workspace

HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _set_cookie(response, name: str) -> SimpleCookie:  # type: ignore[no-untyped-def]
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie
    raise AssertionError(f"no Set-Cookie for {name}")


def test_login_sets_a_secure_httponly_lax_cookie(client: TestClient, tenant: Tenant) -> None:
    response = client.post("/api/v1/auth/login", json={"email": tenant.owner_email, "password": tenant.owner_password})
    assert response.status_code == 200
    body = response.json()
    assert body["workspace"]["slug"] == "acme"
    assert body["role"] == "owner"
    assert "api_keys:manage" in body["permissions"]
    raw = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}="))
    morsel = _set_cookie(response, SESSION_COOKIE)[SESSION_COOKIE]
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == 14 * 24 * 3600
    assert body["csrf_token"] not in raw  # the CSRF token travels in the body, never in the cookie


def test_email_is_case_insensitive_and_wrong_passwords_are_401(client: TestClient, tenant: Tenant) -> None:
    assert login(client, tenant.owner_email.upper(), tenant.owner_password)
    for email, password in [(tenant.owner_email, "wrong password"), ("nobody@acme.test", tenant.owner_password)]:
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"
        assert response.json()["detail"] == "email or password is wrong"  # no hint which one


def test_cookie_writes_need_the_csrf_token(client: TestClient, db: Database, tenant: Tenant) -> None:
    csrf = login(client, tenant.owner_email, tenant.owner_password)
    assert client.get("/api/v1/workspace").status_code == 200  # reads need no token
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        response = client.patch("/api/v1/workspace", json={"name": "Hijacked"}, headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"
    response = client.patch("/api/v1/workspace", json={"name": "Acme Ltd"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    with db.unit_of_work(read_only=True) as session:
        assert session.get(Workspace, tenant.workspace_id).name == "Acme Ltd"  # type: ignore[union-attr]


def test_api_keys_need_no_csrf_token(client: TestClient, tenant: Tenant) -> None:
    # A bearer key is never sent by a browser on its own: CSRF does not apply.
    assert client.patch("/api/v1/workspace", json={"name": "Via key"}, headers=tenant.headers).status_code == 200


def test_logout_revokes_the_session(client: TestClient, db: Database, tenant: Tenant) -> None:
    csrf = login(client, tenant.owner_email, tenant.owner_password)
    stolen = client.cookies.get(SESSION_COOKIE)
    assert client.post("/api/v1/auth/logout").status_code == 403  # CSRF applies to sign-out too
    response = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert _set_cookie(response, SESSION_COOKIE)[SESSION_COOKIE]["max-age"] == "0"
    with db.unit_of_work(read_only=True) as session:
        assert session.scalars(select(StaffSession.revoked_at)).one() is not None
    # The old cookie value is worthless now, even if it was copied before.
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, stolen or "", domain="testserver")
    assert client.get("/api/v1/workspace").status_code == 401


def test_sessions_pick_the_requested_workspace(client: TestClient, db: Database, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/auth/login",
        json={"email": tenant.owner_email, "password": tenant.owner_password, "workspace": "globex"},
    )
    assert response.status_code == 401  # not a member there


def test_html_sign_in_form_needs_its_csrf_token(client: TestClient, db: Database, tenant: Tenant) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    token = HIDDEN_CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    form_cookie = _set_cookie(page, "patronage_login_csrf")["patronage_login_csrf"]
    assert form_cookie["httponly"] is True and form_cookie["samesite"].lower() in ("lax", "strict")
    credentials = {"email": tenant.owner_email, "password": tenant.owner_password}

    missing = client.post("/login", data=credentials, follow_redirects=False)
    assert missing.status_code == 422
    forged = client.post("/login", data={**credentials, "csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.cookies.get(SESSION_COOKIE) is None

    wrong = client.post("/login", data={**credentials, "password": "nope", "csrf_token": token}, follow_redirects=False)
    assert wrong.status_code == 401
    assert client.cookies.get(SESSION_COOKIE) is None

    signed_in = client.post("/login", data={**credentials, "csrf_token": token}, follow_redirects=False)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"
    morsel = _set_cookie(signed_in, SESSION_COOKIE)[SESSION_COOKIE]
    assert morsel["secure"] is True and morsel["httponly"] is True and morsel["samesite"].lower() == "lax"

    home = client.get("/")
    assert home.status_code == 200
    assert "Acme" in home.text
    assert client.cookies.get(SESSION_COOKIE)


def test_html_sign_out_form_ends_the_session(client: TestClient, db: Database, tenant: Tenant) -> None:
    page = client.get("/login")
    token = HIDDEN_CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"email": tenant.owner_email, "password": tenant.owner_password, "csrf_token": token})
    home = client.get("/")
    session_csrf = HIDDEN_CSRF.search(home.text).group(1)  # type: ignore[union-attr]

    forged = client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in

    out = client.post("/logout", data={"csrf_token": session_csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    with db.unit_of_work(read_only=True) as session:
        assert session.scalars(select(StaffSession.revoked_at)).one() is not None
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_home_redirects_strangers_to_sign_in(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
