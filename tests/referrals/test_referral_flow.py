"""Referrals end to end on both databases: link, signup, first order, the referrer's reward after the
return window (a scheduled job, frozen clock), returns taking it back, fraud holds and staff review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.referrals import doctor
from tests.conftest import Tenant
from tests.rewards.helpers import available, drain, events, member_headers, new_customer, post_order

T0 = datetime(2025, 4, 1, 12, tzinfo=UTC)
PROGRAM = {"welcome_trigger": "first_order", "welcome_points": 200, "referrer_points": 500, "max_per_day": 2,
           "min_order_amount": "20.00"}


def doctor_findings(db: Database) -> list[Any]:
    with db.unit_of_work(read_only=True) as session:
        return [f for check in doctor.CHECKS for f in check(session)]


def refer(client: TestClient, tenant: Tenant, code: str, referred: int, **signals: Any) -> dict[str, Any]:
    response = client.post("/api/v1/referrals", headers=tenant.headers,
                           json={"code": code, "referred_customer_id": referred, **signals})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def get(client: TestClient, tenant: Tenant, referral_id: int) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/referrals/{referral_id}", headers=tenant.headers).json())


def test_full_flow_reward_after_return_window_and_reversal(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    assert client.put("/api/v1/referrals/program", headers=tenant.headers, json=PROGRAM).status_code == 200
    ws = tenant.workspace_id
    ann = new_customer(db, ws, email="ann@example.com", external_id="ann")
    member = member_headers(db, ws, ann)
    mine = client.post(f"/api/v1/customers/{ann}/referral-code", headers=member, json={"ip": "10.0.0.1"}).json()
    assert mine["link"] == f"https://testserver/r/{mine['code']}" and len(mine["code"]) == 8
    assert client.post(f"/api/v1/customers/{ann}/referral-code", headers=member, json={}).json()["code"] == mine["code"]
    client.post(f"/api/v1/customers/{ann}/referral/invites", headers=member, json={"count": 3})
    client.post(f"/api/v1/referral-codes/{mine['code'].lower()}/clicks", headers=tenant.headers)

    bob = new_customer(db, ws, email="bob@example.com", external_id="bob")
    cy = new_customer(db, ws, email="cy@example.com", external_id="cy")
    first = refer(client, tenant, mine["code"], bob, ip="10.9.9.9")
    assert first["status"] == "pending" and first["hold_reasons"] == []
    assert refer(client, tenant, mine["code"], bob)["id"] == first["id"]  # a repeat is the same referral
    second = refer(client, tenant, mine["code"], cy)

    # Bob's first order (too small, then a real one) converts the referral; the welcome points arrive.
    post_order(client, tenant, "b-0", "bob", "10.00", T0)
    drain(db, settings)
    assert get(client, tenant, first["id"])["status"] == "pending"
    post_order(client, tenant, "b-1", "bob", "80.00", T0 + timedelta(hours=1))
    post_order(client, tenant, "c-1", "cy", "50.00", T0 + timedelta(hours=1))
    drain(db, settings)
    converted = get(client, tenant, first["id"])
    assert converted["status"] == "converted" and converted["reward_due_at"] == "2025-05-01T13:00:00Z"
    assert available(db, ws, bob) >= 200 and converted["welcome_granted_at"] is not None

    # Cy returns everything inside the window: Ann's reward for Cy is cancelled before it is given.
    client.post("/api/v1/returns", headers=tenant.headers, json={"external_id": "rc", "order_external_id": "c-1"})
    drain(db, settings)
    assert get(client, tenant, second["id"])["status"] == "cancelled"

    # The window passes: the scheduled job rewards Ann once, for Bob only. (Had the worker been down for
    # two days, doctor would say so.)
    before = available(db, ws, ann)
    clock.advance(timedelta(days=32, hours=2))
    assert [f.severity for f in doctor_findings(db)] == ["warning"]
    drain(db, settings)
    assert [f.severity for f in doctor_findings(db)] == ["ok"]
    assert get(client, tenant, first["id"])["status"] == "rewarded"
    assert available(db, ws, ann) == before + 500
    assert [e["referral_id"] for e in events(db, ws, "referral.rewarded")] == [first["id"]]

    # A late full return of Bob's order takes the referrer's points back.
    client.post("/api/v1/returns", headers=tenant.headers, json={"external_id": "rb", "order_external_id": "b-1"})
    drain(db, settings)
    assert get(client, tenant, first["id"])["status"] == "cancelled"
    assert available(db, ws, ann) == before

    stats = client.get(f"/api/v1/customers/{ann}/referral", headers=tenant.headers).json()
    assert stats["stats"] | {"conversion_rate": None} == {
        "invited": 3, "clicks": 1, "signed_up": 2, "converted": 2, "rewarded": 0, "held": 0, "rejected": 0,
        "cancelled": 2, "conversion_rate": None}
    assert stats["stats"]["conversion_rate"] == 1.0
    assert client.get(f"/api/v1/customers/{bob}/referral", headers=tenant.headers).json()["referred_by"] == ann


def test_self_referral_and_velocity_are_held_for_review(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    client.put("/api/v1/referrals/program", headers=tenant.headers,
               json={**PROGRAM, "welcome_trigger": "signup", "min_order_amount": None})
    ws = tenant.workspace_id
    dan = new_customer(db, ws, email="dan.smith@gmail.com", phone="+4915112345678", external_id="dan",
                       address="Hauptstraße 1, Berlin")
    code = client.post(f"/api/v1/customers/{dan}/referral-code", headers=tenant.headers,
                       json={"device_id": "phone-1"}).json()["code"]

    # Dan's second account: another Gmail spelling of the same mailbox, same device.
    alias = new_customer(db, ws, email="dansmith+deals@googlemail.com", external_id="alias")
    held = refer(client, tenant, code, alias, device_id="phone-1")
    assert held["status"] == "held" and held["hold_reasons"] == ["same_email", "same_device"]
    assert available(db, ws, alias) == 0  # nothing granted while held
    flatmate = new_customer(db, ws, email="flatmate@example.com", address="HAUPTSTRASSE 1 - Berlin")
    assert refer(client, tenant, code, flatmate)["hold_reasons"] == ["same_address"]

    # Velocity: Dan already made 2 referrals today (max 2): the next one is held too.
    eve = new_customer(db, ws, email="eve@example.com")
    third = refer(client, tenant, code, eve)
    assert third["status"] == "held" and third["hold_reasons"] == ["velocity_day"]

    listed = client.get("/api/v1/referrals", params={"status": "held"}, headers=tenant.headers).json()["items"]
    assert len(listed) == 3 and {held["id"], third["id"]} <= {r["id"] for r in listed}
    rejected = client.post(f"/api/v1/referrals/{held['id']}/reject", headers=tenant.headers,
                           json={"note": "same person"}).json()
    assert rejected["status"] == "rejected" and rejected["decided_by"].startswith("api_key:")
    approved = client.post(f"/api/v1/referrals/{third['id']}/approve", headers=tenant.headers, json={}).json()
    assert approved["status"] == "pending" and available(db, ws, eve) == 200  # signup welcome on approval
    again = client.post(f"/api/v1/referrals/{third['id']}/approve", headers=tenant.headers, json={})
    assert again.status_code == 409

    own = client.post("/api/v1/referrals", headers=tenant.headers, json={"code": code, "referred_customer_id": dan})
    assert own.status_code == 422 and own.json()["errors"][0]["field"] == "referred_customer_id"
    taken = client.post(f"/api/v1/customers/{eve}/referral-code", headers=tenant.headers, json={}).json()["code"]
    stolen = client.post("/api/v1/referrals", headers=tenant.headers,
                         json={"code": taken, "referred_customer_id": alias})
    assert stolen.status_code == 409 and stolen.json()["reason"] == "already_referred"
    overall = client.get("/api/v1/referrals/stats", headers=tenant.headers).json()
    assert (overall["signed_up"], overall["held"], overall["rejected"]) == (3, 1, 1)
