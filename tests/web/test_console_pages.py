"""Console features through their forms: the rules editor (inline errors, preview, publish, backtest),
customers list and 360, segments with live count, API keys shown once, webhooks, staff, branding."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker
from patronage.workspaces.models import ApiKey, Workspace
from tests.conftest import Tenant
from tests.web import seed
from tests.web.conftest import Staff


def test_rules_editor_shows_errors_inline_then_publishes(staff: Staff, tenant: Tenant, db: Database,
                                                         settings: Settings) -> None:
    client = staff.client
    broken = client.post("/console/program/rules", data={"csrf_token": staff.csrf, "name": "Base",
                                                         "document": '{"rules": [{"key": "Base!"}]}'})
    assert broken.status_code == 422
    assert "rules.0.key" in broken.text and 'aria-invalid="true"' in broken.text
    assert "Base!" in broken.text  # the text typed is kept
    bad_json = client.post("/console/program/rules", data={"csrf_token": staff.csrf, "name": "Base",
                                                           "document": '{"rules": [}'})
    assert bad_json.status_code == 422 and "line 1, column 12" in bad_json.text
    live_check = client.post("/console/program/rules/validate", data={"document": '{"rules": 3}'},
                             headers={"X-CSRF-Token": staff.csrf})
    assert "must be a list of rules" in live_check.text
    created = client.post("/console/program/rules", follow_redirects=False, data={
        "csrf_token": staff.csrf, "name": "Base", "document": json.dumps(seed.RULES)})
    assert created.status_code == 303
    rule_set = created.headers["location"].split("?")[0]
    preview = client.post(f"{rule_set}/preview", data={"csrf_token": staff.csrf, "version": "1", "amount": "20",
                                                       "quantity": "2"})
    assert preview.status_code == 200 and "200 points" in preview.text
    assert client.post(f"{rule_set}/versions/1/publish", data={"csrf_token": staff.csrf}).status_code == 200
    published = client.get(rule_set)
    assert "live: version 1" in published.text and "Save as a new draft" in published.text
    # Editing the live version makes a new draft; the live one never changes.
    edited = dict(seed.RULES, stacking="add")
    saved = client.post(f"{rule_set}/versions", follow_redirects=False, data={
        "csrf_token": staff.csrf, "version": "1", "document": json.dumps(edited)})
    assert "version=2" in saved.headers["location"]
    backtest = client.post(f"{rule_set}/backtests", data={"csrf_token": staff.csrf, "version": "2",
                                                          "date_from": "2024-01-01", "date_to": "2024-12-31"})
    assert backtest.status_code == 200 and 'hx-trigger="every 1s"' in backtest.text
    Worker(db, settings).drain()
    backtest_id = re.search(r'id="bt-(\d+)"', backtest.text)
    assert backtest_id
    report = client.get(f"/console/program/backtests/{backtest_id.group(1)}")
    assert "succeeded" in report.text and "every 1s" not in report.text


def test_customers_list_filters_sorts_and_pages(staff: Staff, tenant: Tenant, db: Database,
                                                settings: Settings) -> None:
    client, headers = staff.client, tenant.headers
    seed.setup_program(client, headers)
    for i in range(30):
        seed.customer(client, headers, f"c-{i:02d}", f"person{i:02d}@example.com")
    sent = client.post("/api/v1/orders", json=seed.order("o-1", "c-07", total="99.00"), headers=headers)
    assert sent.status_code == 201
    Worker(db, settings).drain()
    first = client.get("/console/customers?sort=spent")
    rows = re.findall(r'href="/console/customers/(\d+)"', first.text)
    assert len(rows) == 25
    assert "person07@example.com" in first.text.split("<tbody>")[1].split("</tr>")[0]  # biggest spender first
    more = re.search(r'href="(/console/customers\?[^"]*cursor=[^"]+)"', first.text)
    assert more
    second = client.get(more.group(1).replace("&amp;", "&"))
    assert len(re.findall(r'href="/console/customers/(\d+)"', second.text)) == 5
    assert set(rows).isdisjoint(re.findall(r'href="/console/customers/(\d+)"', second.text))
    searched = client.get("/console/customers?q=person12", headers={"HX-Request": "true", "HX-Target": "results"})
    assert searched.text.startswith('<section id="results"') and "person12@example.com" in searched.text
    buyer = re.search(r'href="/console/customers/(\d+)">Ana Silva</a>\s*<br><span class="muted small">person07',
                      first.text)
    assert buyer
    page = client.get(f"/console/customers/{buyer.group(1)}")
    assert page.status_code == 200
    assert 'id="points-available">990<' in page.text
    for section in ("Profile", "Value", "Points", "Consent", "Orders", "Timeline", "Referrals and rewards"):
        assert f">{section}</h2>" in page.text


def test_segment_builder_counts_live_then_saves(staff: Staff, tenant: Tenant) -> None:
    client = staff.client
    for i in range(3):
        seed.customer(client, tenant.headers, f"s-{i}", f"seg{i}@example.com")
    count = client.get("/console/segments/preview?match=all&field_0=email&op_0=contains&value_0=seg1")
    assert "1 customer matches" in count.text
    wrong = client.get("/console/segments/preview?field_0=orders_count&op_0=contains&value_0=x")
    assert "definition" in wrong.text and "error-box" in wrong.text
    saved = client.post("/console/segments", follow_redirects=False, data={
        "csrf_token": staff.csrf, "name": "Seg buyers", "match": "all", "field_0": "email", "op_0": "starts_with",
        "value_0": "seg"})
    assert saved.status_code == 303
    listing = client.get("/console/segments")
    assert "Seg buyers" in listing.text
    segment_id = re.search(r'href="/console/customers\?segment=(\d+)">Seg buyers', listing.text)
    assert segment_id
    members = client.get(f"/console/customers?segment={segment_id.group(1)}")
    assert members.text.count("@example.com</span>") == 3


def test_api_key_secret_is_shown_once(staff: Staff, db: Database) -> None:
    created = staff.client.post("/console/settings/api-keys", data={
        "csrf_token": staff.csrf, "name": "Shop", "scope": ["events:write", "customers:write"]})
    assert created.status_code == 201
    secret = re.search(r'<code id="new-secret">(pat_[^<]+)</code>', created.text)
    assert secret
    assert created.headers["cache-control"] == "no-store"
    listing = staff.client.get("/console/settings/api-keys")
    assert secret.group(1) not in listing.text and secret.group(1)[:12] in listing.text
    with db.unit_of_work(read_only=True) as session:
        key = session.scalars(select(ApiKey).where(ApiKey.name == "Shop")).one()
        assert sorted(key.scopes) == ["customers:write", "events:write"]
    revoked = staff.client.post(f"/console/settings/api-keys/{key.id}/revoke", data={"csrf_token": staff.csrf})
    assert revoked.status_code == 200 and "revoked" in revoked.text
    api = staff.client.get("/api/v1/customers", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert api.status_code == 401


def test_webhook_endpoint_and_branding(staff: Staff, db: Database, tenant: Tenant) -> None:
    created = staff.client.post("/console/settings/webhooks", data={
        "csrf_token": staff.csrf, "url": "https://example.com/hooks", "event_types": "reward.*, customer.created"})
    assert created.status_code == 201 and 'id="hook-secret"' in created.text
    invalid = staff.client.post("/console/settings/webhooks", data={"csrf_token": staff.csrf, "url": "ftp://x"})
    assert invalid.status_code == 422 and 'class="field-error"' in invalid.text
    branded = staff.client.post("/console/settings/branding", follow_redirects=False, data={
        "csrf_token": staff.csrf, "name": "Acme", "brand_primary_color": "#ffe066", "brand_accent_color": "#112233",
        "locale": "it", "brand_logo_url": "https://cdn.example.com/acme.svg"})
    assert branded.status_code == 303
    with db.unit_of_work(read_only=True) as session:
        workspace = session.get(Workspace, tenant.workspace_id)
        assert workspace is not None and workspace.brand_primary_color == "#ffe066" and workspace.locale == "it"
    portal = staff.client.get(f"/portal/{tenant.slug}/sign-in")
    # A light brand colour gets dark text: the portal stays readable (WCAG AA) whatever the brand.
    assert "--brand:#ffe066;--on-brand:#14171f" in portal.text
    assert 'src="https://cdn.example.com/acme.svg"' in portal.text
    assert "Inviami un link di accesso" in portal.text  # the workspace's language


def test_staff_and_roles(staff: Staff) -> None:
    added = staff.client.post("/console/settings/staff", follow_redirects=False, data={
        "csrf_token": staff.csrf, "email": "mara@example.com", "name": "Mara", "password": "longenough-1",
        "role": "marketer"})
    assert added.status_code == 303
    page = staff.client.get("/console/settings/staff")
    user_id = re.search(r'action="/console/settings/staff/(\d+)/role"[^>]*>(?:(?!</form>).)*mara@example.com',
                        page.text, re.S)
    assert "mara@example.com" in page.text and user_id
    changed = staff.client.post(f"/console/settings/staff/{user_id.group(1)}/role",
                                data={"csrf_token": staff.csrf, "role": "analyst"}, follow_redirects=False)
    assert changed.status_code == 303
    short = staff.client.post("/console/settings/staff", data={
        "csrf_token": staff.csrf, "email": "x@example.com", "password": "short", "role": "marketer"})
    assert short.status_code == 422 and 'class="field-error"' in short.text
