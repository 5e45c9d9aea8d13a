"""Concurrent writers on PostgreSQL: two upserts of one new customer, two imports of the same ids."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from patronage.customers.models import Customer
from patronage.customers.schemas import CustomerUpsert
from patronage.customers.service import ensure_customers, upsert_customer
from patronage.kit.db import Database
from tests.conftest import Tenant
from tests.racing import race


@pytest.mark.parametrize("backend", ["postgres"])
def test_racing_writers_create_one_customer(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    upserts = race(
        db,
        lambda s: upsert_customer(s, ws, CustomerUpsert(external_id="race", first_name="A"), actor="t1")[0],
        lambda s: upsert_customer(s, ws, CustomerUpsert(external_id="race", last_name="B"), actor="t2")[0],
    )
    assert upserts == ["created", "updated"]
    imports = race(
        db,
        lambda s: ensure_customers(s, ws, ["imp-1", "imp-2"]),
        lambda s: ensure_customers(s, ws, ["imp-2", "imp-3"]),
    )
    assert imports[0]["imp-2"] == imports[1]["imp-2"]
    with db.unit_of_work(read_only=True) as session:
        winner = session.scalars(select(Customer).where(Customer.external_id == "race")).one()
        assert (winner.first_name, winner.last_name) == ("A", "B")
        assert session.scalar(select(func.count()).select_from(Customer)) == 4
