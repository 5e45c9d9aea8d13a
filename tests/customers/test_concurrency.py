"""Concurrent writers on PostgreSQL: two upserts of one new customer, two imports of the same ids."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.customers.schemas import CustomerUpsert
from patronage.customers.service import ensure_customers, upsert_customer
from patronage.kit.db import Database
from tests.conftest import Tenant


def _race(db: Database, first: Callable[[Session], Any], second: Callable[[Session], Any]) -> list[Any]:
    """``first`` writes and holds its transaction open while ``second`` runs into the same unique keys."""
    outcomes: list[Any] = [None, None]
    wrote = threading.Event()

    def run_first() -> None:
        with db.unit_of_work() as session:
            outcomes[0] = first(session)
            wrote.set()
            time.sleep(0.4)  # the second writer now waits on the unique indexes, then loses

    def run_second() -> None:
        wrote.wait(10)
        with db.unit_of_work() as session:
            outcomes[1] = second(session)

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


@pytest.mark.parametrize("backend", ["postgres"])
def test_racing_writers_create_one_customer(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    upserts = _race(
        db,
        lambda s: upsert_customer(s, ws, CustomerUpsert(external_id="race", first_name="A"), actor="t1")[0],
        lambda s: upsert_customer(s, ws, CustomerUpsert(external_id="race", last_name="B"), actor="t2")[0],
    )
    assert upserts == ["created", "updated"]
    imports = _race(
        db,
        lambda s: ensure_customers(s, ws, ["imp-1", "imp-2"]),
        lambda s: ensure_customers(s, ws, ["imp-2", "imp-3"]),
    )
    assert imports[0]["imp-2"] == imports[1]["imp-2"]
    with db.unit_of_work(read_only=True) as session:
        race = session.scalars(select(Customer).where(Customer.external_id == "race")).one()
        assert (race.first_name, race.last_name) == ("A", "B")
        assert session.scalar(select(func.count()).select_from(Customer)) == 4
