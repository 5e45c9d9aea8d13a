from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from sqlalchemy import func, select

from patronage.customers.models import Customer
from patronage.events.demo import cdnow_file, load_cdnow, read_purchases
from patronage.events.models import Order
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from tests.conftest import make_tenant
from tests.events.helpers import count

QUIET = Console(quiet=True)


def test_the_cdnow_file_is_read_in_place_with_its_published_counts() -> None:
    path = cdnow_file()
    assert "site-packages" in str(path) or "dist-packages" in str(path)
    purchases = list(read_purchases(path))
    assert len(purchases) == 69_659
    assert len({p.customer for p in purchases}) == 23_570
    assert min(p.day for p in purchases).isoformat() == "1997-01-01"
    assert max(p.day for p in purchases).isoformat() == "1998-06-30"


def test_demo_subset_loads_once(db: Database) -> None:
    tenant = make_tenant(db, "demo", timezone="Pacific/Auckland")
    first = load_cdnow(db, tenant.workspace_id, QUIET, limit=600)
    assert first["orders"] == 600 and not first["skipped"]
    expected = list(read_purchases(cdnow_file(), 600))
    assert count(db, Order) == 600
    assert count(db, Customer) == len({p.customer for p in expected}) == first["customers"]
    with db.unit_of_work(read_only=True) as s:
        last = s.scalar(select(func.max(Order.placed_at)))
        spent = s.scalar(select(func.sum(Customer.total_spent)))
        c = s.scalars(select(Customer).where(Customer.external_id == "cdnow-00003")).one()
    yesterday = (utcnow().astimezone(ZoneInfo("Pacific/Auckland")) - timedelta(days=1)).date()
    assert last is not None
    assert last.astimezone(ZoneInfo("Pacific/Auckland")).date() == yesterday  # the last purchase loaded
    assert Decimal(str(spent)) == sum((p.dollars for p in expected), Decimal(0))
    assert c.email is not None and c.email.endswith("@example.com") and c.first_name
    assert c.orders_count == sum(1 for p in expected if p.customer == "00003")
    again = load_cdnow(db, tenant.workspace_id, QUIET, limit=600)
    assert again["skipped"] and count(db, Order) == 600


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("PATRONAGE_RUN_SLOW") != "1", reason="slow: set PATRONAGE_RUN_SLOW=1")
def test_full_cdnow_load_on_sqlite(db: Database, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the full load is checked on SQLite")
    tenant = make_tenant(db, "demo")
    result = load_cdnow(db, tenant.workspace_id, QUIET)
    assert (result["orders"], result["customers"]) == (69_659, 23_570)
    assert count(db, Order) == 69_659 and count(db, Customer) == 23_570
