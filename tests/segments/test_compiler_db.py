"""The compiled SQL matches a Python-filtered ground truth, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.segments import compiler
from tests.conftest import Tenant
from tests.segments.seed import NOW, Person, seed

Case = tuple[dict[str, Any], Callable[[Person], bool]]


def _days_since(p: Person) -> int | None:
    last = p.last_order_at
    return None if last is None else (NOW - last).days


CASES: list[Case] = [
    ({"field": "country", "op": "eq", "value": "PT"}, lambda p: p.country == "PT"),
    ({"not": {"field": "country", "op": "eq", "value": "PT"}}, lambda p: p.country != "PT"),
    ({"field": "country", "op": "is_not_set"}, lambda p: p.country is None),
    ({"field": "acquisition_channel", "op": "in", "value": ["web", "store"]}, lambda p: p.channel is not None),
    ({"field": "tags", "op": "any_of", "value": ["vip", "wholesale"]}, lambda p: bool(p.tags & {"vip", "wholesale"})),
    ({"field": "tags", "op": "all_of", "value": ["vip", "newsletter"]}, lambda p: {"vip", "newsletter"} <= p.tags),
    ({"field": "tags", "op": "none_of", "value": ["vip"]}, lambda p: "vip" not in p.tags),
    ({"field": "attributes.vip", "op": "is_true"}, lambda p: p.vip is True),
    ({"field": "attributes.score", "op": "gte", "value": 3}, lambda p: p.score is not None and p.score >= 3),
    ({"field": "orders_count", "op": "gte", "value": 2}, lambda p: len(p.valid_orders()) >= 2),
    ({"field": "orders_in_window", "op": "gte", "value": 1, "within_days": 90},
     lambda p: len(p.valid_orders(90)) >= 1),
    ({"field": "spend_in_window", "op": "gt", "value": 50, "within_days": 180},
     lambda p: sum(o[1] for o in p.valid_orders(180)) > 50),
    ({"field": "days_since_last_order", "op": "gte", "value": 60},
     lambda p: (d := _days_since(p)) is not None and d >= 60),
    ({"field": "days_since_last_order", "op": "between", "value": [10, 100]},
     lambda p: (d := _days_since(p)) is not None and 10 <= d <= 100),
    ({"field": "products_bought", "op": "any_of", "value": ["SKU-A"]},
     lambda p: any(sku == "SKU-A" for o in p.valid_orders() for sku, _ in o[3])),
    ({"field": "categories_bought", "op": "none_of", "value": ["bags"], "within_days": 365},
     lambda p: not any(c == "bags" for o in p.valid_orders(365) for _, c in o[3])),
    ({"field": "event_count", "event_type": "page_view", "op": "gte", "value": 2, "within_days": 30},
     lambda p: sum(1 for k, at in p.events if k == "page_view" and at >= NOW - timedelta(days=30)) >= 2),
    ({"field": "consent.email", "op": "is_true"}, lambda p: p.email_consent == "granted"),
    ({"field": "points_balance", "op": "gte", "value": 50}, lambda p: (p.points or 0) >= 50),
    ({"field": "tier", "op": "eq", "value": "Gold"}, lambda p: p.tier == "Gold"),
    ({"field": "tier", "op": "is_not_set"}, lambda p: p.tier is None),
    ({"field": "rfm_segment", "op": "eq", "value": "Champions"}, lambda p: p.rfm_segment == "Champions"),
    ({"field": "p_alive", "op": "lt", "value": 0.6}, lambda p: p.p_alive is not None and p.p_alive < 0.6),
    ({"or": [{"and": [{"field": "country", "op": "eq", "value": "ES"},
                      {"field": "orders_count", "op": "gte", "value": 1}]},
             {"not": {"field": "tags", "op": "any_of", "value": ["newsletter"]}}]},
     lambda p: (p.country == "ES" and len(p.valid_orders()) >= 1) or "newsletter" not in p.tags),
]


def test_compiled_counts_match_python(db: Database, tenant: Tenant) -> None:
    with db.unit_of_work() as session:
        people = seed(session, tenant.workspace_id)
    clock.freeze(NOW)
    with db.unit_of_work(read_only=True) as session:
        for tree, predicate in CASES:
            node = compiler.validate(tree)
            got = set(session.scalars(compiler.matching_ids(node, tenant.workspace_id, NOW)))
            want = {p.id for p in people if predicate(p)}
            assert got == want, tree
    assert any(predicate(p) for p in people for _, predicate in CASES[:3])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_other_workspaces_never_match(db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    with db.unit_of_work() as session:
        seed(session, other_tenant.workspace_id, n=10)
    with db.unit_of_work(read_only=True) as session:
        node = compiler.validate({"field": "orders_count", "op": "gte", "value": 0})
        assert list(session.scalars(compiler.matching_ids(node, tenant.workspace_id, NOW))) == []
