"""Tiers end to end on both databases: upgrade on order events, period reviews with grace, downgrade
policies, returns, overrides, the API and the doctor checks. The clock is frozen and moved by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.ledger import service as ledger
from patronage.tiers import doctor, qualification, service
from patronage.tiers.rules import Metric
from patronage.tiers.schemas import TierCreate, TierProgramIn
from tests.conftest import Tenant, make_tenant
from tests.rewards.helpers import drain, events, member_headers, new_customer, post_order

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def setup_ladder(client: TestClient, tenant: Tenant, **program: Any) -> dict[str, int]:
    body = {"metric": "spend", "window": "calendar_year", "grace_days": 30, "downgrade_policy": "drop_one", **program}
    assert client.put("/api/v1/tiers/program", json=body, headers=tenant.headers).status_code == 200
    ids = {}
    for name, threshold, multiplier in (("Silver", "0", "1"), ("Gold", "500", "1.5"), ("Platinum", "1000", "2")):
        response = client.post("/api/v1/tiers", headers=tenant.headers, json={
            "name": name, "threshold": threshold, "earning_multiplier": multiplier, "perks": [f"{name} perk"]})
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    return ids


def tier_of(client: TestClient, tenant: Tenant, customer_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/customers/{customer_id}/tier", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def review(db: Database, workspace_id: int) -> None:
    with db.unit_of_work() as session:
        qualification.run_reviews(session, workspace_id)


def assert_doctor_ok(db: Database) -> None:
    with db.unit_of_work(read_only=True) as session:
        findings = [f for check in doctor.CHECKS for f in check(session)]
    assert all(f.severity == "ok" for f in findings), findings


def test_upgrade_at_once_then_keep_then_grace_then_drop_one(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    ids = setup_ladder(client, tenant)
    post_order(client, tenant, "o-1", "ann", "300.00", T0)
    post_order(client, tenant, "o-2", "ann", "300.00", T0 + timedelta(hours=1))
    drain(db, settings)
    customer_id = post_order(client, tenant, "o-3", "ann", "100.00", T0 + timedelta(hours=2))["result"]["customer_id"]
    drain(db, settings)

    state = tier_of(client, tenant, customer_id)
    assert state["tier"]["name"] == "Gold"
    assert Decimal(state["earning_multiplier"]) == Decimal("1.5")
    assert Decimal(state["progress"]["value"]) == Decimal(700)
    assert Decimal(state["progress"]["to_next"]) == Decimal(300)
    assert state["progress"]["to_next_text"] == "300.00 EUR"
    assert state["review_at"] == "2026-01-01T00:00:00Z"
    assert [h["reason"] for h in state["history"]] == ["qualified"]
    changed = events(db, tenant.workspace_id, "tier.changed")
    assert [(e["from_tier"], e["to_tier"], e["direction"]) for e in changed] == [("Silver", "Gold", "up")]
    with db.unit_of_work(read_only=True) as session:
        assert service.earning_multiplier(session, tenant.workspace_id, customer_id) == Decimal("1.5")

    # 1 Jan 2026: 2025 spend (700) keeps Gold; the next review is a year later.
    clock.freeze(datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    review(db, tenant.workspace_id)
    state = tier_of(client, tenant, customer_id)
    assert state["tier"]["name"] == "Gold" and state["downgrade_at"] is None
    assert state["review_at"] == "2027-01-01T00:00:00Z"

    # 1 Jan 2027: nothing spent in 2026 -> grace until 31 Jan, still Gold meanwhile.
    clock.freeze(datetime(2027, 1, 1, 0, 10, tzinfo=UTC))
    review(db, tenant.workspace_id)
    state = tier_of(client, tenant, customer_id)
    assert state["tier"]["name"] == "Gold" and state["downgrade_at"] == "2027-01-31T00:00:00Z"
    assert Decimal(state["progress"]["to_keep"]) == Decimal(500)

    clock.advance(timedelta(days=31))
    review(db, tenant.workspace_id)
    state = tier_of(client, tenant, customer_id)
    assert state["tier"]["id"] == ids["Silver"]
    assert [h["reason"] for h in state["history"]] == ["downgrade", "qualified"]
    assert state["review_at"] is None  # nothing left to lose on the base tier
    assert events(db, tenant.workspace_id, "tier.changed")[-1]["direction"] == "down"
    assert_doctor_ok(db)


def test_qualified_policy_grace_requalification_and_returns(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    ids = setup_ladder(client, tenant, downgrade_policy="qualified", grace_days=10)
    ann = post_order(client, tenant, "a-1", "ann", "1200.00", T0)["result"]["customer_id"]
    bob = post_order(client, tenant, "b-1", "bob", "1100.00", T0)["result"]["customer_id"]
    drain(db, settings)
    assert tier_of(client, tenant, ann)["tier"]["name"] == "Platinum"
    assert tier_of(client, tenant, bob)["tier"]["name"] == "Platinum"

    # Bob returns 700 of his 1100: still Platinum until the review, which sees 400 for 2025.
    response = client.post("/api/v1/returns", headers=tenant.headers,
                           json={"external_id": "r-1", "order_external_id": "b-1", "amount": "700.00"})
    assert response.status_code in (200, 201), response.text
    drain(db, settings)
    assert Decimal(tier_of(client, tenant, bob)["progress"]["value"]) == Decimal(400)
    assert tier_of(client, tenant, bob)["tier"]["name"] == "Platinum"

    clock.freeze(datetime(2026, 1, 1, 1, tzinfo=UTC))
    review(db, tenant.workspace_id)
    assert tier_of(client, tenant, ann)["downgrade_at"] is None  # 1200 in 2025 keeps Platinum
    assert tier_of(client, tenant, bob)["downgrade_at"] == "2026-01-11T00:00:00Z"

    clock.freeze(datetime(2027, 1, 1, 1, tzinfo=UTC))
    review(db, tenant.workspace_id)  # Ann spent nothing in 2026: grace
    assert tier_of(client, tenant, ann)["downgrade_at"] == "2027-01-11T00:00:00Z"
    # ... and requalifies during grace with 2027 spend: grace ends, no downgrade.
    post_order(client, tenant, "a-2", "ann", "1000.00", datetime(2027, 1, 5, tzinfo=UTC))
    drain(db, settings)
    state = tier_of(client, tenant, ann)
    assert state["downgrade_at"] is None and state["review_at"] == "2028-01-01T00:00:00Z"

    clock.freeze(datetime(2027, 1, 12, tzinfo=UTC))
    review(db, tenant.workspace_id)
    assert tier_of(client, tenant, ann)["tier"]["name"] == "Platinum"
    # Bob's grace ended long ago: the qualified policy drops him straight to what 2025 showed (Silver).
    bob_state = tier_of(client, tenant, bob)
    assert bob_state["tier"]["id"] == ids["Silver"]
    assert_doctor_ok(db)


def test_override_holds_a_tier_until_its_end_date(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    ids = setup_ladder(client, tenant)
    customer_id = new_customer(db, tenant.workspace_id, email="vip@example.com")
    until = (T0 + timedelta(days=10)).isoformat()
    response = client.put(f"/api/v1/customers/{customer_id}/tier/override", headers=tenant.headers,
                          json={"tier_id": ids["Platinum"], "until": until, "reason": "influencer"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tier"]["name"] == "Platinum" and body["override"]["reason"] == "influencer"
    assert body["earned_tier_id"] == ids["Silver"]

    bad = client.put(f"/api/v1/customers/{customer_id}/tier/override", headers=tenant.headers,
                     json={"tier_id": ids["Gold"], "until": (T0 - timedelta(days=1)).isoformat(), "reason": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "until"

    clock.advance(timedelta(days=11))
    review(db, tenant.workspace_id)
    state = tier_of(client, tenant, customer_id)
    assert state["tier"]["name"] == "Silver" and state["override"] is None
    assert [h["reason"] for h in state["history"]] == ["override_ended", "override"]
    assert_doctor_ok(db)


def test_tier_api_validation_auth_and_isolation(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    ids = setup_ladder(client, tenant)
    dup = client.post("/api/v1/tiers", headers=tenant.headers, json={"name": "Gold", "threshold": "700"})
    assert dup.status_code == 409 and dup.json()["reason"] == "tier_name_taken"
    bad = client.post("/api/v1/tiers", headers=tenant.headers, json={"name": "Neg", "threshold": "-1"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "threshold"
    assert client.put("/api/v1/tiers/program", headers=tenant.headers,
                      json={"window": "weekly"}).status_code == 422
    customer_id = new_customer(db, tenant.workspace_id, email="c@example.com")
    with db.unit_of_work() as session:
        qualification.override(session, tenant.workspace_id, customer_id, tier_id=ids["Gold"],
                               until=clock.utcnow() + timedelta(days=1), reason="test", actor="test")
    in_use = client.delete(f"/api/v1/tiers/{ids['Gold']}", headers=tenant.headers)
    assert in_use.status_code == 409 and in_use.json()["reason"] == "tier_in_use"
    assert client.delete(f"/api/v1/tiers/{ids['Platinum']}", headers=tenant.headers).status_code == 204

    stats = {row["name"]: row["customers"] for row in client.get("/api/v1/tiers/stats", headers=tenant.headers).json()}
    assert stats == {"Silver": 0, "Gold": 1}

    # A member reads their own tier, not another customer's; staff routes stay closed to them.
    other_id = new_customer(db, tenant.workspace_id, email="d@example.com")
    member = member_headers(db, tenant.workspace_id, customer_id)
    assert client.get(f"/api/v1/customers/{customer_id}/tier", headers=member).status_code == 200
    assert client.get(f"/api/v1/customers/{other_id}/tier", headers=member).status_code == 404
    assert client.post("/api/v1/tiers", headers=member, json={"name": "X", "threshold": "1"}).status_code == 403

    other = make_tenant(db, "globex")
    assert client.get(f"/api/v1/tiers/{ids['Gold']}", headers=other.headers).status_code == 404
    assert client.get(f"/api/v1/customers/{customer_id}/tier", headers=other.headers).status_code == 404


def test_orders_metric_and_cancelled_orders_stop_counting(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    program = {"metric": "orders", "window": "rolling_12_months"}
    assert client.put("/api/v1/tiers/program", headers=tenant.headers, json=program).status_code == 200
    for name, threshold in (("Member", "0"), ("Regular", "2")):
        client.post("/api/v1/tiers", headers=tenant.headers, json={"name": name, "threshold": threshold})
    customer_id = post_order(client, tenant, "x-1", "cy", "10.00", T0)["result"]["customer_id"]
    post_order(client, tenant, "x-2", "cy", "10.00", T0)
    drain(db, settings)
    assert tier_of(client, tenant, customer_id)["tier"]["name"] == "Regular"
    response = client.post("/api/v1/orders/x-2/status", headers=tenant.headers, json={"status": "cancelled"})
    assert response.status_code == 200, response.text
    drain(db, settings)
    assert Decimal(tier_of(client, tenant, customer_id)["progress"]["value"]) == Decimal(1)


def test_points_metric_follows_the_ledger(db: Database, tenant: Tenant, settings: Settings) -> None:
    """Earned points count in their earning date's window; reversed earnings stop counting; refunds of
    spent points are not earnings."""

    clock.freeze(T0)
    ws = tenant.workspace_id
    with db.unit_of_work() as session:
        service.update_program(session, ws, TierProgramIn(metric=Metric.POINTS_EARNED), actor="t")
        service.create_tier(session, ws, TierCreate(name="Base", threshold=Decimal(0)), actor="t")
        gold = service.create_tier(session, ws, TierCreate(name="Gold", threshold=Decimal(600)), actor="t")
    customer = new_customer(db, ws, email="p@example.com")
    with db.unit_of_work() as session:
        ledger.earn(session, ws, customer, 700, source_type="order", source_id="1", reason="t", actor="t")
        ledger.earn(session, ws, customer, 900, source_type="import", source_id="old", reason="t", actor="t",
                    earned_at=T0 - timedelta(days=400))  # last year's: not in this year's window
        ledger.spend(session, ws, customer, 100, source_type="reward", source_id="s", reason="t", actor="t")
    drain(db, settings)
    with db.unit_of_work() as session:
        state = service.customer_tier(session, ws, customer)
        assert state.tier is not None and state.tier.id == gold.id and state.progress.value == Decimal(700)
        ledger.reverse(session, ws, customer, source_type="order", source_id="1", points=200, reason="t", actor="t")
        ledger.reverse(session, ws, customer, source_type="reward", source_id="s", reason="refund", actor="t")
    drain(db, settings)
    with db.unit_of_work() as session:
        assert service.customer_tier(session, ws, customer).progress.value == Decimal(500)
