"""Member sign-in end to end: the link travels through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from tests.conftest import Tenant

from patronage.config import Settings, get_settings
from patronage.customers.models import Customer, CustomerIdentity
from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    box = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("PATRONAGE_SMTP_PORT", str(port))
    monkeypatch.setenv("PATRONAGE_BASE_URL", "https://testserver")
    get_settings.cache_clear()
    yield box
    controller.stop()
    get_settings.cache_clear()


def _member(db: Database, tenant: Tenant, email: str) -> int:
    with db.unit_of_work() as session:
        customer = Customer(workspace_id=tenant.workspace_id, external_id="c-1", email=email)
        session.add(customer)
        session.flush()
        session.add(
            CustomerIdentity(workspace_id=tenant.workspace_id, customer_id=customer.id, kind="email", value=email)
        )
        return customer.id


def test_magic_link_signs_member_in_once(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant, inbox: Inbox
) -> None:
    customer_id = _member(db, tenant, "ana@example.com")

    response = client.post(f"/api/v1/portal/{tenant.slug}/magic-link", json={"email": "Ana@Example.com"})
    assert response.status_code == 202
    # Unknown emails get the same answer: no member enumeration.
    assert client.post(f"/api/v1/portal/{tenant.slug}/magic-link", json={"email": "x@example.com"}).json() == (
        response.json()
    )
    Worker(db, settings).drain()

    assert len(inbox.messages) == 1
    raw = inbox.messages[0].get_payload(decode=True)
    assert isinstance(raw, bytes)
    body = raw.decode()
    match = re.search(r"/portal/acme/auth/([A-Za-z0-9_-]+)", body)
    assert match, body
    token = match.group(1)

    session = client.post(f"/api/v1/portal/{tenant.slug}/sessions", json={"token": token})
    assert session.status_code == 201
    member = session.json()
    assert member["customer_id"] == customer_id
    assert member["token"].startswith("pmt_")
    cookie = session.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie

    again = client.post(f"/api/v1/portal/{tenant.slug}/sessions", json={"token": token})
    assert again.status_code == 401  # single use

    client.cookies.clear()
    staff_route = client.get("/api/v1/workspace", headers={"Authorization": f"Bearer {member['token']}"})
    assert staff_route.status_code == 403
    assert staff_route.json()["code"] == "forbidden"


def test_magic_link_requests_are_rate_limited(client: TestClient, tenant: Tenant) -> None:
    codes = [
        client.post(f"/api/v1/portal/{tenant.slug}/magic-link", json={"email": "a@example.com"}).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [202] * 5
    limited = client.post(f"/api/v1/portal/{tenant.slug}/magic-link", json={"email": "a@example.com"})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
