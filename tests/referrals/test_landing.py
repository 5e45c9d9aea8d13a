"""The referral landing page /r/{code} on both databases: what it shows (the referrer's first name only,
the offer, how to claim it), one counted visit per browser, friendly 404s, rate limits that stop code
guessing, and codes unique across workspaces (the link names no workspace)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.referrals import landing, service
from patronage.referrals import repository as repo
from patronage.referrals.models import ReferralCode
from patronage.web.portal.landing import SEEN_COOKIE, UNKNOWN_CODES_BY_IP, VISITS_BY_IP
from tests.conftest import Tenant, make_tenant
from tests.rewards.helpers import new_customer

NOON = datetime(2025, 6, 10, 12, tzinfo=UTC)
PROGRAM = {"welcome_trigger": "first_order", "welcome_points": 500, "referrer_points": 300,
           "min_order_amount": "20.00", "signup_url": "https://shop.example.com/register?src=mail&ref=old"}


def referrer(db: Database, ws: int, *, first_name: str = "Ana Maria") -> tuple[int, str]:
    customer_id = new_customer(db, ws, email="ana.silva@example.com", phone="+351912345678")
    with db.unit_of_work() as session:
        from patronage.customers.models import Customer

        row = session.get(Customer, customer_id)
        assert row is not None
        row.first_name, row.last_name = first_name, "Silva"
        code = service.ensure_code(session, ws, customer_id).code
    return customer_id, code


def program(client: TestClient, tenant: Tenant, **over: object) -> None:
    response = client.put("/api/v1/referrals/program", headers=tenant.headers, json={**PROGRAM, **over})
    assert response.status_code == 200, response.text


def clicks(db: Database, ws: int, code: str) -> int:
    with db.unit_of_work(read_only=True) as session:
        row = repo.CodeRepository(session, ws).by_code(code)
        assert row is not None
        return row.clicks


def test_the_page_shows_the_offer_and_first_name_only_and_counts_one_visit_per_browser(
    client: TestClient, tenant: Tenant, db: Database, app: object
) -> None:
    ws = tenant.workspace_id
    reward = client.post("/api/v1/rewards", headers=tenant.headers, json={
        "name": "Free coffee", "kind": "free_product", "sku": "COFFEE", "points_cost": 100})
    assert reward.status_code == 201, reward.text
    program(client, tenant, welcome_reward_id=reward.json()["id"])
    _, code = referrer(db, ws)

    page = client.get(f"/r/{code}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Ana invites you to" in text and "Maria" not in text  # the first word of the first name only
    for private in ("Silva", "ana.silva@example.com", "912345678"):
        assert private not in text
    assert "500 points and Free coffee for you" in text and "first order of" in text
    assert f"https://shop.example.com/register?src=mail&amp;ref={code}" in text  # the stale ref is replaced
    assert page.headers["x-robots-tag"] == "noindex" and page.headers["cache-control"] == "no-store"
    assert "data-sw" not in text  # no member service worker for visitors
    assert page.cookies.get(SEEN_COOKIE) == code
    assert clicks(db, ws, code) == 1
    assert client.get(f"/r/{code}").status_code == 200  # a reload: the cookie says it was counted
    assert clicks(db, ws, code) == 1
    with TestClient(app) as other:  # another browser; the code as people type it
        typed = f"{code[:4].lower()}-{code[4:].lower()}"
        assert other.get(f"/r/{typed}").status_code == 200
    assert clicks(db, ws, code) == 2
    stats = client.get("/api/v1/referrals/stats", headers=tenant.headers).json()
    assert stats["clicks"] == 2

    portuguese = client.get(f"/r/{code}?lang=pt")
    assert portuguese.status_code == 200 and 'lang="pt"' in portuguese.text
    assert "Ana convida-o" in portuguese.text


def test_offer_variants_and_a_program_without_a_sign_up_page(client: TestClient, tenant: Tenant,
                                                           db: Database) -> None:
    program(client, tenant, welcome_trigger="signup", welcome_points=1, signup_url=None)
    _, code = referrer(db, tenant.workspace_id, first_name="")
    text = client.get(f"/r/{code}").text
    assert "You are invited to" in text and "1 point for you" in text and "as soon as you sign up" in text
    assert 'id="claim"' not in text and "enter this invitation code" in text
    program(client, tenant, welcome_points=0, signup_url="https://shop.example.com/join")
    text = client.get(f"/r/{code}").text
    assert "start collecting rewards" in text and 'href="https://shop.example.com/join?ref=' in text
    bad = client.put("/api/v1/referrals/program", headers=tenant.headers, json={"signup_url": "javascript:alert(1)"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "signup_url"


def test_unknown_inactive_and_erased_codes_are_a_friendly_404(client: TestClient, tenant: Tenant,
                                                             db: Database) -> None:
    program(client, tenant)
    customer_id, code = referrer(db, tenant.workspace_id)
    for path in ("/r/NOSUCHCODE", "/r/%3Cscript%3E", f"/r/{'A' * 300}"):
        missing = client.get(path)
        assert missing.status_code == 404 and "This invitation link does not work" in missing.text
        assert "<script>" not in missing.text
    program(client, tenant, active=False)
    assert client.get(f"/r/{code}").status_code == 404
    program(client, tenant, active=True)
    assert client.get(f"/r/{code}").status_code == 200
    erased = client.post(f"/api/v1/customers/{customer_id}/erase", headers=tenant.headers)
    assert erased.status_code == 200, erased.text
    gone = client.get(f"/r/{code}?lang=it")
    assert gone.status_code == 404 and 'lang="it"' in gone.text


def test_guessing_codes_is_rate_limited_before_the_look_up(client: TestClient, tenant: Tenant,
                                                          db: Database) -> None:
    clock.freeze(NOON)  # one rate-limit window throughout
    program(client, tenant)
    _, code = referrer(db, tenant.workspace_id)
    for _ in range(UNKNOWN_CODES_BY_IP.max_requests + 5):
        assert client.get("/r/no-such-code-!").status_code == 404
    assert client.get(f"/r/{code}").status_code == 200
    for i in range(UNKNOWN_CODES_BY_IP.max_requests):
        assert client.get(f"/r/GUESS{i:04d}").status_code == 404
    for _ in range(5):  # what cannot be a code is answered without a look-up, and spends nothing
        assert client.get("/r/x").status_code == 404
    refused = client.get("/r/GUESS9999")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    # Over the budget even a real code is refused: a guesser cannot tell hits from misses any more.
    assert client.get(f"/r/{code}").status_code == 429


def test_visits_are_rate_limited_per_client(client: TestClient, tenant: Tenant, db: Database) -> None:
    clock.freeze(NOON)
    program(client, tenant)
    _, code = referrer(db, tenant.workspace_id)
    for _ in range(VISITS_BY_IP.max_requests):
        assert client.get(f"/r/{code}").status_code == 200
    assert client.get(f"/r/{code}").status_code == 429


def test_codes_are_unique_across_workspaces(db: Database) -> None:
    one, two = make_tenant(db, "one"), make_tenant(db, "two")
    a = new_customer(db, one.workspace_id, email="a@example.com")
    b = new_customer(db, two.workspace_id, email="b@example.com")
    with db.unit_of_work() as session:
        code = service.ensure_code(session, one.workspace_id, a).code
        assert repo.CodeRepository(session, two.workspace_id).code_taken(code)
        found = landing.find(session, code)
        assert found is not None and found.workspace.id == one.workspace_id
    with pytest.raises(IntegrityError), db.unit_of_work() as session:
        session.add(ReferralCode(workspace_id=two.workspace_id, customer_id=b, code=code, signals={}))
        session.flush()


def test_with_ref_keeps_the_query_and_replaces_ref() -> None:
    assert landing.with_ref("https://s.example/join", "AB12") == "https://s.example/join?ref=AB12"
    assert landing.with_ref("https://s.example/j?x=1&ref=OLD#top", "AB12") == "https://s.example/j?x=1&ref=AB12#top"
    assert landing.first_name_only("  Ana   Maria ") == "Ana" and landing.first_name_only(" ") is None
