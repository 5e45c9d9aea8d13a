"""Earning test helpers: publish rules, send orders and returns through the real API, run the worker."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker
from tests.conftest import Tenant

BASE_RULES: dict[str, Any] = {
    "stacking": "multiply",
    "rules": [
        {"key": "base", "name": "1 point per EUR", "trigger": "order",
         "effect": {"type": "per_currency", "points": 1, "rounding": "floor"}},
    ],
}


def publish(client: TestClient, tenant: Tenant, document: dict[str, Any], name: str = "program") -> tuple[int, int]:
    r = client.post("/api/v1/earning/rule-sets", headers=tenant.headers, json={"name": name, "document": document})
    assert r.status_code == 201, r.text
    rule_set_id = r.json()["id"]
    r = client.post(f"/api/v1/earning/rule-sets/{rule_set_id}/versions/1/publish", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return rule_set_id, 1


def send_order(client: TestClient, tenant: Tenant, external_id: str, lines: list[dict[str, Any]], *,
               customer: str = "cust-1", placed_at: str = "2024-03-05T12:00:00Z", **extra: Any) -> dict[str, Any]:
    body = {"external_id": external_id, "customer_external_id": customer, "placed_at": placed_at, "lines": lines,
            **extra}
    r = client.post("/api/v1/orders", headers=tenant.headers, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["result"]


def send_return(client: TestClient, tenant: Tenant, external_id: str, order: str, lines: list[dict[str, Any]] | None,
                **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"external_id": external_id, "order_external_id": order, **extra}
    if lines is not None:
        body["lines"] = lines
    r = client.post("/api/v1/returns", headers=tenant.headers, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["result"]


def drain(db: Database, settings: Settings) -> int:
    return Worker(db, settings).drain()


def points(client: TestClient, tenant: Tenant, customer_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/customers/{customer_id}/points", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()
