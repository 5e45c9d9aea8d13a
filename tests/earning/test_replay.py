"""The bulk replay gives every order exactly what the live handler gives it, and is idempotent."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.config import Settings
from patronage.earning import replay
from patronage.kit.db import Database
from patronage.ledger.models import LedgerTransaction
from tests.conftest import Tenant
from tests.earning.conftest import drain, publish, send_order
from tests.ledger.conftest import assert_doctor_ok

RULES = {"stacking": "add", "rules": [
    {"key": "base", "effect": {"type": "per_currency", "points": 1, "rounding": "half_up", "scope": "line"}},
    {"key": "shoes", "effect": {"type": "multiplier", "factor": 2, "lines": {"categories": ["shoes"]}}},
    {"key": "first", "when": {"first_order": True}, "effect": {"type": "fixed", "points": 50}},
    {"key": "monthly", "effect": {"type": "fixed", "points": 5},
     "limits": {"per_customer": {"times": 2, "period": "month"}}},
]}
ORDERS = [
    ("o1", "a", "2024-01-03T10:00:00Z", [{"sku": "S", "category": "shoes", "unit_price": "40.50"}]),
    ("o2", "a", "2024-01-09T10:00:00Z", [{"sku": "T", "unit_price": "19.99", "quantity": 3}]),
    ("o3", "b", "2024-01-10T10:00:00Z", [{"sku": "T", "unit_price": "5"}, {"sku": "V", "unit_price": "-5",
                                                                          "is_reward": True}]),
    ("o4", "a", "2024-01-20T10:00:00Z", [{"sku": "S", "category": "shoes", "unit_price": "10"}]),
    ("o5", "b", "2024-02-02T10:00:00Z", [{"sku": "S", "category": "shoes", "unit_price": "99.99"}]),
]


def _earned(db: Database) -> dict[str, int]:
    with db.unit_of_work(read_only=True) as s:
        rows = s.execute(select(LedgerTransaction.data, LedgerTransaction.points)
                         .where(LedgerTransaction.kind == "earn")).all()
    return {data["order_external_id"]: pts for data, pts in rows}


def test_replay_matches_the_live_path_and_is_idempotent(
    client: TestClient, db: Database, settings: Settings, tenant: Tenant
) -> None:
    for external_id, who, at, lines in ORDERS:
        send_order(client, tenant, external_id, lines, customer=who, placed_at=at)
    publish(client, tenant, RULES)
    with db.unit_of_work() as s:
        report = replay.replay_orders(s, tenant.workspace_id)
    assert (report.orders, report.posted, report.skipped) == (5, 5, 0)
    replayed = _earned(db)
    # o1: 40.50 of shoes x (1 + 1) = 81, first order 50, monthly 5; o3: the voucher leaves nothing to earn on;
    # o4: the third order of January gets no monthly bonus.
    assert replayed == {"o1": 81 + 50 + 5, "o2": 60 + 5, "o3": 50 + 5, "o4": 20, "o5": 200 + 5}
    with db.unit_of_work() as s:
        again = replay.replay_orders(s, tenant.workspace_id)
    assert (again.posted, again.skipped) == (0, 5)
    assert_doctor_ok(db)

    # The live path on a fresh workspace gives the same points per order.
    from tests.conftest import make_tenant

    other = make_tenant(db, "live")
    publish(client, other, RULES)
    for external_id, who, at, lines in ORDERS:
        send_order(client, other, external_id, lines, customer=who, placed_at=at)
    drain(db, settings)
    with db.unit_of_work(read_only=True) as s:
        live = {d["order_external_id"]: p for d, p in s.execute(
            select(LedgerTransaction.data, LedgerTransaction.points)
            .where(LedgerTransaction.kind == "earn", LedgerTransaction.workspace_id == other.workspace_id))}
    assert live == replayed
