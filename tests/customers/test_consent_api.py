"""Consent over HTTP: decisions as evidence, current state, topics, double opt-in, the messaging gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patronage.customers.consent import customer_can_message
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import DomainEvent
from tests.conftest import Tenant
from tests.customers.conftest import API, create_customer


def test_decisions_evidence_state_and_topics(client: TestClient, tenant: Tenant, db: Database) -> None:
    h = tenant.headers
    topics = f"{API}/consent-topics"
    assert client.post(topics, json={"key": "newsletter", "name": "Newsletter"}, headers=h).status_code == 201
    assert client.post(topics, json={"key": "newsletter", "name": "Again"}, headers=h).status_code == 409
    bad_key = client.post(topics, json={"key": "Bad Key", "name": "x"}, headers=h)
    assert bad_key.json()["errors"][0]["field"] == "key"
    renamed = client.patch(f"{topics}/newsletter", json={"description": "Monthly news"}, headers=h)
    assert renamed.json()["description"] == "Monthly news"
    assert [t["key"] for t in client.get(topics, headers=h).json()] == ["newsletter"]

    customer = create_customer(client, tenant, external_id="c", email="c@example.com")
    url = f"{API}/customers/{customer['id']}/consents"
    t0 = datetime(2025, 1, 10, 12, tzinfo=UTC)
    grant = {"channel": "email", "status": "granted", "source": "checkout", "text": "Send me offers",
             "text_version": "v3", "ip": "203.0.113.7", "user_agent": "Firefox", "occurred_at": t0.isoformat()}
    first = client.post(url, json=grant, headers=h)
    assert first.status_code == 201, first.text
    assert first.json()["state"]["status"] == "granted"
    assert first.json()["evidence"]["ip"] == "203.0.113.7"

    for body, field in [
        ({**grant, "channel": "pigeon"}, "channel"),
        ({**grant, "topic": "unknown-topic"}, "topic"),
        ({**grant, "status": "maybe"}, "status"),
        ({**grant, "status": "withdrawn", "double_opt_in": True}, "body"),
        ({**grant, "ip": "999.1.1.1"}, "ip"),
        ({**grant, "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({k: v for k, v in grant.items() if k != "source"}, "source"),
    ]:
        response = client.post(url, json=body, headers=h)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"].startswith(field), response.json()

    # A withdrawal decided before the grant (arriving late) is evidence, but not the current decision.
    late = {"channel": "email", "status": "withdrawn", "source": "call_centre",
            "occurred_at": (t0 - timedelta(days=1)).isoformat()}
    assert client.post(url, json=late, headers=h).json()["state"]["status"] == "granted"
    topic = {"channel": "email", "topic": "newsletter", "status": "granted", "source": "preferences"}
    assert client.post(url, json=topic, headers=h).status_code == 201
    sms = {"channel": "sms", "status": "granted", "source": "checkout"}
    assert client.post(url, json=sms, headers=h).status_code == 201

    overview = client.get(url, headers=h).json()
    assert {(c["channel"], c["topic"], c["status"]) for c in overview["consents"]} == {
        ("email", None, "granted"), ("email", "newsletter", "granted"), ("sms", None, "granted"),
    }
    assert overview["can_message"]["email"] and overview["can_message"]["sms"]
    assert not overview["can_message"]["push"]

    withdraw = {"channel": "email", "status": "withdrawn", "source": "unsubscribe_link"}
    assert client.post(url, json=withdraw, headers=h).json()["state"]["status"] == "withdrawn"
    with db.unit_of_work(read_only=True) as session:
        ws, cid = tenant.workspace_id, customer["id"]
        assert not customer_can_message(session, ws, cid, "email")
        assert not customer_can_message(session, ws, cid, "email", "newsletter")  # channel-wide opt-out wins
        assert customer_can_message(session, ws, cid, "sms")
        assert not customer_can_message(session, ws, cid + 1000, "sms")
        changes = session.scalar(
            select(func.count()).select_from(DomainEvent).where(DomainEvent.type == "customer.consent_changed")
        )
        assert changes == 4  # email granted, newsletter granted, sms granted, email withdrawn

    page = client.get(f"{url}/evidence", params={"limit": 3}, headers=h).json()
    assert [e["source"] for e in page["items"]] == ["unsubscribe_link", "checkout", "preferences"]
    rest = client.get(f"{url}/evidence", params={"cursor": page["next_cursor"]}, headers=h).json()
    assert [e["source"] for e in rest["items"]] == ["call_centre", "checkout"]
    assert rest["next_cursor"] is None


def test_double_opt_in(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    customer = create_customer(client, tenant, external_id="d", email="d@example.com")
    url = f"{API}/customers/{customer['id']}/consents"
    request = {"channel": "email", "status": "granted", "double_opt_in": True, "source": "signup_form",
               "text": "Newsletter, monthly", "text_version": "2025-01"}
    asked = client.post(url, json=request, headers=h)
    assert asked.status_code == 201, asked.text
    token = asked.json()["confirmation_token"]
    assert token.startswith("coi_")
    assert asked.json()["state"]["status"] == "pending"
    assert client.get(url, headers=h).json()["can_message"]["email"] is False
    assert token not in client.get(f"{url}/evidence", headers=h).text  # only its digest is stored

    confirm = {"token": token, "ip": "2001:db8::1", "user_agent": "Mail client"}
    done = client.post(f"{API}/consents/confirm", json=confirm, headers=h)
    assert done.status_code == 200, done.text
    evidence = done.json()["evidence"]
    assert (evidence["status"], evidence["source"], evidence["confirms_id"]) == (
        "granted", "double_opt_in", asked.json()["evidence"]["id"],
    )
    assert evidence["text_version"] == "2025-01"
    assert done.json()["state"]["status"] == "granted"
    again = client.post(f"{API}/consents/confirm", json=confirm, headers=h)
    assert again.json()["evidence"]["id"] == evidence["id"]  # confirming twice changes nothing

    unknown = client.post(f"{API}/consents/confirm", json={"token": "coi_unknown-token"}, headers=h)
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (422, "token")

    # Asking again does not take away the grant; a stale link expires.
    clock.freeze(datetime.now(UTC))
    second = client.post(url, json=request, headers=h).json()
    assert second["state"]["status"] == "granted"
    clock.advance(timedelta(days=8))
    expired = client.post(f"{API}/consents/confirm", json={"token": second["confirmation_token"]}, headers=h)
    assert expired.status_code == 422
    assert expired.json()["errors"][0]["type"] == "expired"
