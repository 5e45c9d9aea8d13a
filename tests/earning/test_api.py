"""Rule sets, versions, publishing, preview, backtest and other triggers through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from tests.conftest import Tenant
from tests.earning.conftest import BASE_RULES, drain, points, publish, send_order
from tests.ledger.conftest import assert_doctor_ok

API = "/api/v1/earning"
DOUBLE = {"stacking": "multiply", "rules": [
    {"key": "base", "effect": {"type": "per_currency", "points": 2}},
    {"key": "big-basket", "when": {"field": "order.net", "op": "gte", "value": 100},
     "effect": {"type": "fixed", "points": 25}, "limits": {"per_customer": {"times": 1, "period": "month"}}},
]}


def test_rule_set_lifecycle_versions_and_publish(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    r = client.post(f"{API}/rule-sets", headers=h, json={"name": "main", "document": BASE_RULES})
    assert r.status_code == 201 and r.json()["versions"] == [1] and r.json()["published_version"] is None
    rs = r.json()["id"]
    bad = client.post(f"{API}/rule-sets/{rs}/versions", headers=h,
                      json={"document": {"rules": [{"key": "x", "effect": {"type": "fixed", "points": -5}}]}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rules.0.effect.points"
    assert client.post(f"{API}/rule-sets/{rs}/versions", headers=h, json={"document": DOUBLE}).json()["version"] == 2
    assert client.put(f"{API}/rule-sets/{rs}/versions/2", headers=h, json={"notes": "x2"}).status_code == 200
    assert client.post(f"{API}/rule-sets/{rs}/versions/1/publish", headers=h).json()["status"] == "published"
    assert client.post(f"{API}/rule-sets/{rs}/versions/2/publish", headers=h).json()["status"] == "published"
    versions = client.get(f"{API}/rule-sets/{rs}/versions", headers=h).json()
    assert [v["status"] for v in versions] == ["retired", "published"]
    frozen = client.put(f"{API}/rule-sets/{rs}/versions/2", headers=h, json={"notes": "edit"})
    assert frozen.status_code == 409 and frozen.json()["code"] == "rule_set_version_not_draft"
    assert client.get(f"{API}/rule-sets/{rs}", headers=h).json()["published_version"] == 2
    assert client.post(f"{API}/rule-sets/{rs}/unpublish", headers=h).json()["published_version"] is None
    dup = client.post(f"{API}/rule-sets", headers=h, json={"name": "main"})
    assert dup.status_code == 409


def test_preview_explains_each_rule_and_records_nothing(client: TestClient, tenant: Tenant) -> None:
    h = tenant.headers
    rs, _ = publish(client, tenant, BASE_RULES)
    client.post(f"{API}/rule-sets/{rs}/versions", headers=h, json={"document": DOUBLE})
    order = {"lines": [{"sku": "A", "unit_price": "60", "quantity": 2},
                       {"sku": "R", "unit_price": "-20", "is_reward": True}], "placed_at": "2024-03-05T10:00:00Z"}
    live = client.post(f"{API}/preview", headers=h, json={"order": order})
    assert live.status_code == 200, live.text
    assert live.json()["points"] == 100 and live.json()["rule_sets"] == [f"{rs}:1"]
    draft = client.post(f"{API}/preview", headers=h, json={"order": order, "rule_set_id": rs, "version": 2}).json()
    assert draft["points"] == 225
    assert [(r["key"], r["matched"], r["points"]) for r in draft["rules"]] == [("base", True, 200),
                                                                                ("big-basket", True, 25)]
    assert "order.net = 100" in draft["rules"][1]["reason"]
    bad = client.post(f"{API}/preview", headers=h, json={"order": order, "order_id": 1})
    assert bad.status_code == 422


def test_backtest_reports_points_cost_and_distribution(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    h = tenant.headers
    client.put("/api/v1/loyalty/settings", headers=h, json={"cost_per_point": "0.01", "breakage_rate": "0.2"})
    rs, _ = publish(client, tenant, BASE_RULES)
    client.post(f"{API}/rule-sets/{rs}/versions", headers=h, json={"document": DOUBLE})
    for i, (who, amount) in enumerate([("a", "120"), ("a", "130"), ("b", "10"), ("c", "55")]):
        send_order(client, tenant, f"o-{i}", [{"sku": "A", "unit_price": amount}], customer=who,
                   placed_at=f"2024-03-0{i + 1}T12:00:00Z")
    r = client.post(f"{API}/backtests", headers=h, json={"rule_set_id": rs, "version": 2,
                                                          "date_from": "2024-03-01T00:00:00Z",
                                                          "date_to": "2024-04-01T00:00:00Z"})
    assert r.status_code == 202 and r.json()["total"] == 4
    drain(db, settings)
    result = client.get(f"{API}/backtests/{r.json()['id']}", headers=h).json()
    assert result["status"] == "succeeded" and result["processed"] == 4
    report = result["result"]
    # Tested: 2 points per unit + 25 once a month for a basket of 100+ (customer a: once, not twice).
    assert report["points"] == {"tested": 2 * 315 + 25, "live": 315, "delta": 315 + 25}
    assert report["projected_cost"]["tested"] == "6.5500"
    assert report["liability"]["tested"] == "5.2400"
    assert report["by_rule"]["big-basket"] == {"points": 25, "orders": 1}
    assert report["distribution"]["tested"]["customers"] == 3
    assert report["top_customers"][0]["points"] == 525
    assert client.get(f"{API}/backtests", headers=h).json()["items"][0]["id"] == r.json()["id"]
    # Nothing was posted to the ledger by the backtest itself (only the live rules' earnings exist).
    assert sum(points(client, tenant, c)["lifetime_earned"] for c in (1, 2, 3)) == 315


def test_behavioural_events_and_signups_earn_with_limits(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    h = tenant.headers
    clock.freeze(datetime(2024, 3, 5, 12, tzinfo=UTC))
    publish(client, tenant, {"rules": [
        {"key": "welcome", "trigger": "signup", "effect": {"type": "fixed", "points": 100}},
        {"key": "review", "trigger": "review_posted", "when": {"field": "event.rating", "op": "gte", "value": 4},
         "effect": {"type": "fixed", "points": 20}, "limits": {"per_customer": {"times": 2, "period": "month"}}},
    ]})
    r = client.post("/api/v1/customers", headers=h, json={"external_id": "cust-9", "email": "nine@example.com"})
    assert r.status_code in (200, 201), r.text
    customer = r.json()["id"]
    for i, rating in enumerate([5, 2, 4, 5]):
        e = client.post("/api/v1/events", headers=h, json={
            "external_id": f"ev-{i}", "type": "review_posted", "customer_external_id": "cust-9",
            "occurred_at": (datetime(2024, 3, 5, tzinfo=UTC) + timedelta(hours=i)).isoformat(),
            "properties": {"rating": rating}})
        assert e.status_code in (200, 201), e.text
    drain(db, settings)
    p = points(client, tenant, customer)
    assert p["available"] == 100 + 20 * 2  # the 2-star review fails, the 4th is over the monthly limit
    assert_doctor_ok(db)


def test_other_workspaces_rule_sets_and_balances_are_not_found(
    client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    rs, _ = publish(client, tenant, BASE_RULES)
    order = send_order(client, tenant, "o-1", [{"sku": "A", "unit_price": "10"}])
    theirs = other_tenant.headers
    assert client.get(f"{API}/rule-sets/{rs}", headers=theirs).status_code == 404
    assert client.post(f"{API}/rule-sets/{rs}/versions/1/publish", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/customers/{order['customer_id']}/points", headers=theirs).status_code == 404
    assert client.post(f"{API}/preview", headers=theirs, json={"order_id": order["id"]}).status_code == 404


def _manual(client: TestClient, tenant: Tenant, customer: int, body: dict[str, Any], key: str) -> Any:
    return client.post(f"/api/v1/customers/{customer}/points/adjustments", json=body,
                       headers={**tenant.headers, "Idempotency-Key": key})


def test_adjustments_replay_with_the_same_idempotency_key(client: TestClient, tenant: Tenant) -> None:
    order = send_order(client, tenant, "o-1", [{"sku": "A", "unit_price": "10"}])
    customer = order["customer_id"]
    first = _manual(client, tenant, customer, {"points": 50, "reason": "goodwill"}, "k-1")
    assert first.status_code == 201, first.text
    again = _manual(client, tenant, customer, {"points": 50, "reason": "goodwill"}, "k-1")
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    other = _manual(client, tenant, customer, {"points": 60, "reason": "goodwill"}, "k-1")
    assert other.status_code in (409, 422)
    too_much = _manual(client, tenant, customer, {"points": -500, "reason": "oops"}, "k-2")
    assert too_much.status_code == 409 and too_much.json()["code"] == "insufficient_points"
    assert points(client, tenant, customer)["available"] == 50
