"""ensure_customers with more ids than one look-up batch: known, merged, identity-less and new profiles."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from patronage.customers.merge import merge_customers
from patronage.customers.models import Customer, CustomerIdentity, StageHistory
from patronage.customers.service import ensure_customers
from patronage.kit.db import Database
from tests.conftest import Tenant


def _count(db: Database, model: type) -> int:
    with db.unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_many_ids_resolve_to_the_same_profiles_as_before(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    known = [f"k-{i}" for i in range(1_200)]
    with db.unit_of_work() as session:
        first = ensure_customers(session, ws, known)
        merge_customers(session, ws, first["k-0"], first["k-1"], actor="test")
        # A profile whose external_id identity is gone is still found by its own column.
        session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id == first["k-2"]))
    fresh = [f"n-{i}" for i in range(700)]
    with db.unit_of_work() as session:
        second = ensure_customers(session, ws, [*reversed(known), *fresh, "k-5"])
    assert second["k-1"] == first["k-0"]
    assert {e: second[e] for e in known if e != "k-1"} == {e: first[e] for e in known if e != "k-1"}
    assert len({second[e] for e in fresh} | set(first.values())) == len(fresh) + len(known)
    assert _count(db, Customer) == len(known) + len(fresh)
    assert _count(db, StageHistory) == len(known) + len(fresh)
    with db.unit_of_work() as session:
        assert ensure_customers(session, ws, [*known, *fresh]) == second
    assert _count(db, Customer) == len(known) + len(fresh)
