"""Program set-up shared by the web tests, through the public API (as a shop would do it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

RULES = {"stacking": "multiply",
         "rules": [{"key": "base", "name": "10 points per euro", "trigger": "order",
                    "effect": {"type": "per_currency", "points": 10}}]}


class Http(Protocol):
    def post(self, url: str, **kwargs: Any) -> Any: ...
    def put(self, url: str, **kwargs: Any) -> Any: ...


@dataclass
class Program:
    rule_set_id: int
    reward_id: int


def order(external_id: str, customer_external_id: str, total: str = "34.90") -> dict[str, Any]:
    return {
        "external_id": external_id, "customer_external_id": customer_external_id,
        "placed_at": "2024-03-01T10:00:00+01:00", "channel": "web",
        "lines": [{"line_id": "L1", "sku": "TEA-1", "name": "Green tea", "quantity": 1, "unit_price": total}],
        "total": total,
    }


def setup_program(http: Http, headers: dict[str, str], *, rules: bool = True) -> Program:
    """Points available at once (no return window), optionally a published rule set, one reward."""
    response = http.put("/api/v1/loyalty/settings", json={"return_window_days": 0}, headers=headers)
    assert response.status_code == 200, response.text
    rule_set_id = 0
    if rules:
        response = http.post("/api/v1/earning/rule-sets", json={"name": "Base", "document": RULES}, headers=headers)
        assert response.status_code == 201, response.text
        rule_set_id = response.json()["id"]
        published = http.post(f"/api/v1/earning/rule-sets/{rule_set_id}/versions/1/publish", headers=headers)
        assert published.status_code == 200, published.text
    response = http.post("/api/v1/rewards", json={
        "name": "5 € off", "kind": "fixed_discount", "points_cost": 100, "value": "5",
        "description": "Five euros off your next order.",
    }, headers=headers)
    assert response.status_code == 201, response.text
    return Program(rule_set_id, response.json()["id"])


def customer(http: Http, headers: dict[str, str], external_id: str, email: str, **extra: Any) -> int:
    response = http.post("/api/v1/customers", json={"external_id": external_id, "email": email,
                                                    "first_name": "Ana", "last_name": "Silva", **extra},
                         headers=headers)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])
