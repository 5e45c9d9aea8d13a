"""Fixtures for the console and portal tests, and the browser-test switch.

Browser tests (test_browser*.py) drive headless Chromium through Playwright. When no Chromium is found
they are skipped, and the root conftest prints one visible line saying so (tests/web/chromium.py), unless
``PATRONAGE_REQUIRE_BROWSER=1`` (CI): then a missing browser fails the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

import patronage.web.console.dashboard  # noqa: F401 - registers the analytics and segment tables for create_all
from patronage.config import Settings
from patronage.customers.models import Customer, CustomerIdentity
from patronage.kit.db import Database
from patronage.members import service as members
from patronage.workspaces.auth import MEMBER_COOKIE
from patronage.workspaces.repository import get_workspace
from tests.conftest import Tenant
from tests.web.browser import browser, live  # noqa: F401 - the browser tests' fixtures
from tests.web.chromium import CHROMIUM_CANDIDATES, REQUIRE_ENV, SKIP_LINE, browser_required, find_chromium

CHROMIUM = find_chromium()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if CHROMIUM is None:
        if browser_required():
            pytest.fail(f"{REQUIRE_ENV} is set but no Chromium was found (looked in {', '.join(CHROMIUM_CANDIDATES)})")
        pytest.skip(SKIP_LINE)
    return CHROMIUM


# ---- signed-in clients --------------------------------------------------------------------------------
@dataclass
class Staff:
    client: TestClient
    csrf: str


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: TestClient, email: str, password: str) -> str:
    """Sign in through the login form; returns the session's CSRF token (read from the console)."""
    page = client.get("/login")
    token = CSRF_FIELD.search(page.text)
    assert token, page.text
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token.group(1)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    found = CSRF_FIELD.search(client.get("/console/customers").text)
    assert found
    return found.group(1)


@pytest.fixture
def staff(client: TestClient, tenant: Tenant) -> Staff:
    return Staff(client, sign_in(client, tenant.owner_email, tenant.owner_password))


def make_customer(db: Database, workspace_id: int, email: str, *, external_id: str, locale: str | None = None,
                  first_name: str = "Ana") -> int:
    with db.unit_of_work() as session:
        customer = Customer(workspace_id=workspace_id, external_id=external_id, email=email, first_name=first_name,
                            locale=locale)
        session.add(customer)
        session.flush()
        session.add(CustomerIdentity(workspace_id=workspace_id, customer_id=customer.id, kind="email", value=email))
        return customer.id


def member_cookie(db: Database, settings: Settings, workspace_id: int, email: str) -> str:
    """A member session secret, minted through the members service as a magic link would."""
    with db.unit_of_work() as session:
        workspace = get_workspace(session, workspace_id)
        assert workspace is not None
        token = members.request_magic_link(session, settings, workspace, email, ip=None)
        assert token is not None
    with db.unit_of_work() as session:
        _, secret = members.consume_magic_link(session, settings, workspace_id, token)
    return secret


@pytest.fixture
def member(client: TestClient, db: Database, settings: Settings, tenant: Tenant) -> int:
    """A signed-in member (customer) of the tenant, in ``client``'s cookies; returns the customer id."""
    customer_id = make_customer(db, tenant.workspace_id, "ana@example.com", external_id="c-1")
    client.cookies.set(MEMBER_COOKIE, member_cookie(db, settings, tenant.workspace_id, "ana@example.com"))
    return customer_id
