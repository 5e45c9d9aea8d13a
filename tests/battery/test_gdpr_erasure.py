"""GDPR erasure leaves no personal data anywhere in the database: a customer whose details went through
every path that stores them (profile, identities, orders, events, consent evidence, a magic link and its
mail, points, a referral, idempotent responses, domain events, jobs, webhook deliveries, rate-limit
counters) is erased through the API, then every row of every table is dumped (pg_dump on PostgreSQL) and
searched for each of those details. The ledger's invariants and the customer's balance are unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker
from patronage.kit.models import Base
from tests.battery.conftest import doctor_errors
from tests.conftest import Tenant

EMAIL = "zoe.erasable-7f3a@example.com"
PHONE = "+351912345677"
FIRST, LAST = "Zoelinde", "Erasurova"
DEVICE = "device-zoe-4411"
IP = "203.0.113.77"
AGENT = "ZoeBrowser/9.1"
SECRET_WORDS = (EMAIL, PHONE, PHONE.lstrip("+"), FIRST, LAST, DEVICE, IP, AGENT, "Zozo-the-unique", "Rua Zoe 12")


def dump(db: Database, settings: Settings) -> str:
    """Everything the database holds, as text."""
    if db.dialect == "postgresql" and shutil.which("pg_dump"):
        url = make_url(settings.database_url)
        env = {**os.environ, "PGPASSWORD": url.password or ""}
        out = subprocess.run(
            ["pg_dump", "--data-only", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
             "-U", url.username or "postgres", url.database or ""],
            capture_output=True, text=True, env=env, check=False)
        if out.returncode == 0:
            return out.stdout
    with db.unit_of_work(read_only=True) as session:  # SQLite (or no usable pg_dump): every row of every table
        return "\n".join(f"{table.name}: {tuple(row)!r}" for table in Base.metadata.sorted_tables
                         for row in session.execute(select(table)))


def rows(text: str) -> list[tuple[str, str]]:
    """(table, row) pairs of a dump: ours (``table: (...)``) or pg_dump's (``COPY public.table ...``)."""
    out, table = [], "?"
    for line in text.splitlines():
        if line.startswith("COPY "):
            table = line.split()[1].split(".")[-1]
        elif ": (" in line and not line.startswith("\t"):
            name, _, rest = line.partition(": ")
            out.append((name, rest) if " " not in name else (table, line))
        else:
            out.append((table, line))
    return out


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def test_erasure_leaves_no_personal_data_and_keeps_the_books(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    h = tenant.headers
    ok(client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks"}, headers=h))  # deliveries copy payloads
    ok(client.put("/api/v1/loyalty/settings", json={"return_window_days": 0}, headers=h))
    ok(client.put("/api/v1/referrals/program", json={"active": True, "welcome_trigger": "signup",
                                                       "welcome_points": 50}, headers=h))
    ok(client.post("/api/v1/customer-attributes", json={"name": "nickname", "type": "string"}, headers=h))
    customer = ok(client.post("/api/v1/customers", headers={**h, "Idempotency-Key": "signup-zoe"}, json={
        "external_id": "zoe-1", "email": EMAIL, "phone": PHONE, "first_name": FIRST, "last_name": LAST,
        "birthday": "1990-04-02", "tags": ["vip"], "attributes": {"nickname": "Zozo-the-unique"}}))
    cid = customer["id"]
    ok(client.post(f"/api/v1/customers/{cid}/identities", json={"kind": "device_id", "value": DEVICE}, headers=h))
    ok(client.post(f"/api/v1/customers/{cid}/consents", headers=h, json={
        "channel": "email", "status": "granted", "source": "checkout", "ip": IP, "user_agent": AGENT}))
    ok(client.post("/api/v1/orders", headers=h, json={
        "external_id": "zoe-order-1", "customer_email": EMAIL, "placed_at": "2025-02-01T10:00:00Z",
        "attributes": {"shipping_address": "Rua Zoe 12", "phone": PHONE},
        "lines": [{"line_id": "1", "sku": "TEA", "unit_price": "40.00", "quantity": 1}]}))
    ok(client.post("/api/v1/events", headers=h, json={
        "external_id": "zoe-event-1", "type": "review_posted", "occurred_at": "2025-02-02T10:00:00Z",
        "customer_email": EMAIL, "properties": {"rating": 5, "text": f"Love it, {FIRST}"}}))
    ok(client.post(f"/api/v1/customers/{cid}/points/adjustments", headers=h,
                   json={"points": 120, "reason": "goodwill", "source_id": "zoe-goodwill"}))
    referrer = ok(client.post("/api/v1/customers", json={"external_id": "friend-1", "email": "friend@example.com"},
                              headers=h))["id"]
    code = ok(client.post(f"/api/v1/customers/{referrer}/referral-code", json={}, headers=h))["code"]
    ok(client.post("/api/v1/referrals", headers=h, json={"code": code, "referred_customer_id": cid, "ip": IP,
                                                          "device_id": DEVICE, "address": "Rua Zoe 12"}))
    ok(client.post(f"/api/v1/portal/{tenant.slug}/magic-link", json={"email": EMAIL}))
    Worker(db, settings, name="gdpr").drain()  # every reaction: earning, webhooks, mail, segments...
    before = ok(client.get(f"/api/v1/customers/{cid}/points", headers=h))
    seen = [w for w in SECRET_WORDS if w.lower() in dump(db, settings).lower()]
    assert EMAIL in seen and FIRST in seen, seen  # the dump does see personal data before erasure

    ok(client.post(f"/api/v1/customers/{cid}/erase", headers=h))
    Worker(db, settings, name="gdpr").drain()  # and whatever the erasure itself set off

    leaks = sorted({(word, table) for table, row in rows(dump(db, settings)) for word in SECRET_WORDS
                    if word.lower() in row.lower()})
    assert leaks == [], f"personal data left after erasure (word, table): {leaks}"
    after = ok(client.get(f"/api/v1/customers/{cid}/points", headers=h))
    assert {k: after[k] for k in ("available", "pending", "lifetime_earned", "lifetime_spent")} == \
        {k: before[k] for k in ("available", "pending", "lifetime_earned", "lifetime_spent")}
    assert doctor_errors(db) == []
