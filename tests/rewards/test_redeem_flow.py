"""Rewards and coupons end to end on both databases, through the HTTP API a portal and a shop use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.rewards import doctor
from tests.conftest import Tenant, make_tenant
from tests.rewards.helpers import available, drain, events, give_points, member_headers, new_customer, post_order

T0 = datetime(2025, 5, 1, 10, tzinfo=UTC)


def create_reward(client: TestClient, tenant: Tenant, **over: Any) -> dict[str, Any]:
    body = {"name": "10 EUR off", "kind": "fixed_discount", "points_cost": 500, "value": "10.00",
            "description": "Ten euros off your next order", "image_url": "https://cdn.example.com/10.png", **over}
    response = client.post("/api/v1/rewards", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_doctor_ok(db: Database) -> None:
    with db.unit_of_work(read_only=True) as session:
        findings = [f for check in doctor.CHECKS for f in check(session)]
    assert all(f.severity == "ok" for f in findings), findings


def test_redeem_coupon_validate_consume_once_release_on_cancel(
    client: TestClient, tenant: Tenant, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    reward = create_reward(client, tenant, stock=5, coupon_valid_days=30, min_order_amount="20.00")
    assert reward["currency"] == "EUR"  # the workspace's
    ann = new_customer(db, tenant.workspace_id, email="ann@example.com", external_id="ann")
    give_points(db, tenant.workspace_id, ann, 1200, "seed")
    member = member_headers(db, tenant.workspace_id, ann)

    # The member redeems from the portal; a repeat of the request id returns the same redemption.
    url = f"/api/v1/customers/{ann}/rewards/{reward['id']}/redeem"
    first = client.post(url, json={"request_id": "tap-1"}, headers=member)
    assert first.status_code == 201, first.text
    again = client.post(url, json={"request_id": "tap-1"}, headers=member)
    assert again.json()["id"] == first.json()["id"]
    redemption = first.json()
    code = redemption["coupon"]["code"]
    assert len(code) >= 12 and redemption["coupon"]["expires_at"] == "2025-05-31T10:00:00Z"
    assert available(db, tenant.workspace_id, ann) == 700
    assert client.get(f"/api/v1/rewards/{reward['id']}", headers=tenant.headers).json()["stock"] == 4
    assert events(db, tenant.workspace_id, "reward.redeemed")[0]["coupon_code"] == code

    # Checkout: validate (nothing changes), then consume once.
    shop = tenant.headers
    small = client.post("/api/v1/coupons/validate", headers=shop, json={"code": code, "order_amount": "15.00"})
    assert small.json()["valid"] is False and small.json()["reason"] == "below_minimum_order"
    display = redemption["coupon"]["display_code"].lower()
    ok = client.post("/api/v1/coupons/validate", headers=shop, json={"code": display, "order_amount": "80.00",
                                                                       "customer_id": ann})
    assert ok.json()["valid"] is True and Decimal(ok.json()["discount_amount"]) == Decimal("10.00")
    consume = {"code": code, "order_id": "shop-1001", "order_amount": "80.00", "customer_id": ann}
    used = client.post("/api/v1/coupons/consume", headers=shop, json=consume)
    assert used.status_code == 200 and used.json()["replayed"] is False
    replay = client.post("/api/v1/coupons/consume", headers=shop, json=consume)
    assert replay.status_code == 200 and replay.json()["replayed"] is True
    other = client.post("/api/v1/coupons/consume", headers=shop, json={**consume, "order_id": "shop-1002"})
    assert other.status_code == 409 and other.json()["reason"] == "used_up"
    assert client.get(f"/api/v1/coupons/{code}", headers=shop).json()["status"] == "used"

    # The order arrives, then is cancelled: the coupon becomes usable again.
    post_order(client, tenant, "shop-1001", "ann", "80.00", T0)
    assert client.post("/api/v1/orders/shop-1001/status", headers=shop,
                       json={"status": "cancelled"}).status_code == 200
    drain(db, settings)
    coupon = client.get(f"/api/v1/coupons/{code}", headers=shop).json()
    assert (coupon["status"], coupon["used_count"]) == ("active", 0)
    again_used = client.post("/api/v1/coupons/consume", headers=shop, json={**consume, "order_id": "shop-1003"})
    assert again_used.status_code == 200

    # Someone else's code or an unknown one.
    assert client.post("/api/v1/coupons/consume", headers=shop,
                       json={**consume, "code": "NOPE-NOPE-NOPE"}).status_code == 404
    assert_doctor_ok(db)


def test_member_summary_limits_tiers_and_errors(client: TestClient, tenant: Tenant, db: Database) -> None:
    clock.freeze(T0)
    gold = client.post("/api/v1/tiers", headers=tenant.headers, json={"name": "Gold", "threshold": "1000"}).json()
    client.post("/api/v1/tiers", headers=tenant.headers, json={"name": "Base", "threshold": "0"})
    cheap = create_reward(client, tenant, name="Free shipping", kind="free_shipping", points_cost=100,
                          value=None, per_customer_limit=1)
    create_reward(client, tenant, name="Gold lounge", kind="experience", points_cost=50, value=None,
                  tier_ids=[gold["id"]])
    create_reward(client, tenant, name="Big", points_cost=5000, value="50.00")
    create_reward(client, tenant, name="Segment only", points_cost=10, value="1.00", segment_ids=[42])
    bob = new_customer(db, tenant.workspace_id, email="bob@example.com")
    give_points(db, tenant.workspace_id, bob, 300, "seed")
    member = member_headers(db, tenant.workspace_id, bob)

    summary = client.get(f"/api/v1/customers/{bob}/loyalty", headers=member)
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["balance"]["available"] == 300 and body["tier"]["tier"]["name"] == "Base"
    assert [o["reward"]["name"] for o in body["rewards_available"]] == ["Free shipping"]
    assert [o["reward"]["name"] for o in body["rewards_upcoming"]] == ["Big"]
    offers = {o["reward"]["name"]: o["reason"] for o in client.get(f"/api/v1/customers/{bob}/rewards",
                                                                    headers=member).json()}
    assert offers["Gold lounge"] == "tier_required" and offers["Segment only"] == "segment_required"

    url = f"/api/v1/customers/{bob}/rewards/{cheap['id']}/redeem"
    assert client.post(url, json={}, headers=member).status_code == 201
    limit = client.post(url, json={}, headers=member)
    assert limit.status_code == 409 and limit.json()["reason"] == "limit_reached"
    big = next(r for r in client.get("/api/v1/rewards", headers=tenant.headers).json()["items"] if r["name"] == "Big")
    broke = client.post(f"/api/v1/customers/{bob}/rewards/{big['id']}/redeem", json={}, headers=tenant.headers)
    assert broke.status_code == 409 and broke.json()["code"] == "insufficient_points"
    assert client.get(f"/api/v1/rewards/{big['id']}", headers=tenant.headers).json()["redeemed_count"] == 0
    assert available(db, tenant.workspace_id, bob) == 200

    # Another member cannot redeem for Bob; another workspace cannot see Bob's rewards.
    eve = new_customer(db, tenant.workspace_id, email="eve@example.com")
    assert client.post(url, json={}, headers=member_headers(db, tenant.workspace_id, eve)).status_code == 404
    other = make_tenant(db, "globex")
    assert client.get(f"/api/v1/customers/{bob}/loyalty", headers=other.headers).status_code == 404
    bad = client.post("/api/v1/rewards", headers=tenant.headers,
                      json={"name": "x", "kind": "percentage_discount", "points_cost": 1, "value": "120"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "value"


def test_fulfilment_cancel_refund_and_expiry_policies(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    clock.freeze(T0)
    dinner = create_reward(client, tenant, name="Chef's table", kind="experience", points_cost=300, value=None,
                           stock=1)
    refund = create_reward(client, tenant, name="5 off", points_cost=100, value="5.00", coupon_valid_days=7,
                           expired_coupon_policy="refund")
    forfeit = create_reward(client, tenant, name="3 off", points_cost=100, value="3.00", coupon_valid_days=7)
    cy = new_customer(db, tenant.workspace_id, email="cy@example.com")
    give_points(db, tenant.workspace_id, cy, 1000, "seed")
    staff = tenant.headers

    experience = client.post(f"/api/v1/customers/{cy}/rewards/{dinner['id']}/redeem",
                             json={"details": {"guests": 2}}, headers=staff).json()
    assert experience["fulfilment"]["status"] == "pending" and experience["coupon"] is None
    sold_out = client.post(f"/api/v1/customers/{cy}/rewards/{dinner['id']}/redeem", json={}, headers=staff)
    assert sold_out.status_code == 409 and sold_out.json()["reason"] == "out_of_stock"
    pending = client.get("/api/v1/fulfilments", headers=staff).json()["items"]
    assert [f["details"] for f in pending] == [{"guests": 2}]
    cancelled = client.post(f"/api/v1/redemptions/{experience['id']}/cancel", json={"reason": "chef ill"},
                            headers=staff)
    assert cancelled.status_code == 200 and cancelled.json()["fulfilment"]["status"] == "cancelled"
    assert client.get(f"/api/v1/rewards/{dinner['id']}", headers=staff).json()["stock"] == 1
    assert available(db, tenant.workspace_id, cy) == 1000

    client.post(f"/api/v1/customers/{cy}/rewards/{refund['id']}/redeem", json={}, headers=staff)
    client.post(f"/api/v1/customers/{cy}/rewards/{forfeit['id']}/redeem", json={}, headers=staff)
    assert available(db, tenant.workspace_id, cy) == 800
    clock.advance(timedelta(days=8))
    from patronage.rewards.coupons import expire_due

    with db.unit_of_work() as session:
        assert expire_due(session, tenant.workspace_id) == 2
    assert available(db, tenant.workspace_id, cy) == 900  # only the refund policy gives points back
    statuses = {r["reward_id"]: r["status"] for r in
                client.get(f"/api/v1/customers/{cy}/redemptions", headers=staff).json()["items"]}
    assert statuses[refund["id"]] == "refunded" and statuses[forfeit["id"]] == "issued"
    assert_doctor_ok(db)


def test_promotion_batches_and_multi_use_limits(client: TestClient, tenant: Tenant, db: Database) -> None:
    clock.freeze(T0)
    staff = tenant.headers
    batch = client.post("/api/v1/promotions", headers=staff, json={
        "name": "Sorry!", "purpose": "service_recovery", "code_type": "single_use",
        "discount_kind": "percentage_discount", "value": "20"}).json()
    codes = client.post(f"/api/v1/promotions/{batch['id']}/codes", headers=staff,
                        json={"count": 200, "prefix": "SRY"}).json()["codes"]
    assert len(set(codes)) == 200 and all(c.startswith("SRY") and len(c) == 15 for c in codes)
    assert client.get(f"/api/v1/promotions/{batch['id']}", headers=staff).json()["codes_generated"] == 200
    half = client.post("/api/v1/coupons/consume", headers=staff,
                       json={"code": codes[0], "order_id": "o-1", "order_amount": "50.00"}).json()
    assert Decimal(half["discount"]) == Decimal("10.00")

    multi = client.post("/api/v1/promotions", headers=staff, json={
        "name": "Summer", "code_type": "multi_use", "discount_kind": "fixed_discount", "value": "5",
        "code": "summer-25", "max_uses_total": 2, "per_customer_limit": 1}).json()
    assert multi["code"] == "SUMMER25" and multi["currency"] == "EUR"
    taken = client.post("/api/v1/promotions", headers=staff, json={
        "name": "Dup", "code_type": "multi_use", "discount_kind": "free_shipping", "code": "SUMMER25"})
    assert taken.status_code == 409 and taken.json()["reason"] == "code_taken"
    a, b, c = (new_customer(db, tenant.workspace_id, email=f"{n}@example.com") for n in "abc")

    def use(customer: int | None, order: str) -> Any:
        return client.post("/api/v1/coupons/consume", headers=staff, json={
            "code": "Summer 25", "order_id": order, "order_amount": "40.00", "customer_id": customer})

    assert use(a, "m-1").status_code == 200
    assert use(a, "m-2").json()["reason"] == "customer_limit_reached"
    assert use(None, "m-3").json()["reason"] == "customer_required"
    assert use(b, "m-4").status_code == 200
    assert use(c, "m-5").json()["reason"] == "used_up"
    released = client.post("/api/v1/coupons/release", headers=staff, json={"code": "SUMMER25", "order_id": "m-4"})
    assert released.json()["status"] == "released"
    assert use(c, "m-6").status_code == 200
    client.patch(f"/api/v1/promotions/{multi['id']}", headers=staff, json={"active": False})
    check = client.post("/api/v1/coupons/validate", headers=staff, json={"code": "SUMMER25", "order_amount": "9"})
    assert check.json()["reason"] == "inactive"
    assert_doctor_ok(db)
