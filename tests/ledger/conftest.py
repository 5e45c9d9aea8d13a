"""Ledger test helpers: customers made directly (the ledger needs only their rows) and invariant checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patronage.customers.models import Customer
from patronage.kit.db import Database
from patronage.kit.doctor import run_checks
from patronage.ledger import program
from tests.conftest import Tenant


def make_customer(db: Database, workspace_id: int, external_id: str = "c1") -> int:
    with db.unit_of_work() as session:
        customer = Customer(workspace_id=workspace_id, external_id=external_id, email=f"{external_id}@x.test")
        session.add(customer)
        session.flush()
        return customer.id


def set_program(db: Database, workspace_id: int, **changes: object) -> None:
    with db.unit_of_work() as session:
        program.update_settings(session, workspace_id, changes, actor="test")


def assert_doctor_ok(db: Database) -> None:
    with db.unit_of_work(read_only=True) as session:
        findings = run_checks(session, ["patronage.ledger.doctor"])
    errors = [f for f in findings if f.severity == "error"]
    assert not errors, errors


@pytest.fixture
def customer(db: Database, tenant: Tenant) -> int:
    return make_customer(db, tenant.workspace_id)


@pytest.fixture
def uow(db: Database) -> Iterator[object]:
    yield db.unit_of_work
