"""The Arrow-native extract: ADBC record batches land in the store's declared types on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from patronage.analytics import extract as ex
from patronage.analytics.calendar import day_number
from patronage.analytics.extract import extract, open_store
from patronage.config import Settings
from patronage.customers.models import Customer
from patronage.events.models import Order
from patronage.kit.db import Database, make_database
from patronage.kit.models import Base
from patronage.workspaces.models import Workspace
from tests.conftest import Tenant


@pytest.fixture
def adbc_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny ADBC SQLite batches (type inference sees one row), and no silent fallback to the row path."""
    monkeypatch.setattr(ex, "_SQLITE_BATCH_ROWS", 2)

    def no_rows(*_: object) -> Iterator[object]:
        raise AssertionError("a file-backed database must be read through ADBC")

    monkeypatch.setattr(ex._RowReader, "batches", no_rows)


def _orders(db: Database, ws: int, customer_id: int, totals: list[tuple[str, str]]) -> None:
    with db.unit_of_work() as session:
        for i, (total, refunded) in enumerate(totals):
            session.add(Order(workspace_id=ws, external_id=f"o{i}", customer_id=customer_id, currency="EUR",
                              subtotal=Decimal(total), total=Decimal(total), refunded_total=Decimal(refunded),
                              placed_at=datetime(2024, 1, 5, 12, tzinfo=UTC), channel=None if i < 2 else "web"))


def test_file_backed_databases_are_read_through_adbc(db: Database, backend: str) -> None:
    target = ex._adbc_uri(db)
    assert target is not None and target[0] == ("sqlite" if backend == "sqlite" else "postgresql")
    assert "+psycopg" not in target[1]


@pytest.mark.usefixtures("adbc_only")
def test_null_first_columns_and_mixed_numerics_keep_their_types(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as session:
        customers = [Customer(workspace_id=ws, external_id=f"c{i}", acquisition_channel=None) for i in range(5)]
        session.add_all(customers)
        session.flush()
        # NULL in the first rows (a whole first batch), typed later: text, integer and timestamp columns.
        for late in customers[3:]:
            late.acquisition_channel = "app"
            late.merged_into_id = customers[0].id
            late.erased_at = datetime(2024, 2, 1, 10, 0, 0, 500000, tzinfo=UTC)
        first = customers[0].id
    # Whole amounts first (SQLite stores them as INTEGER), fractional ones later; one exact difference.
    _orders(db, ws, first, [("10", "0"), ("20", "0"), ("12.5", "0"), ("7.125", "0"), ("10.1", "0.1")])
    store = open_store(None)
    stats = extract(db, store, ws, "UTC")
    assert stats.rows["customers"] == 5 and stats.rows["orders"] == 5
    got = store.execute(
        "SELECT acquisition_channel, merged_into_id, erased_at FROM customers ORDER BY id"
    ).fetchall()
    late = (("app", first, datetime(2024, 2, 1, 10, 0, 0, 500000)),) * 2
    assert got == [(None, None, None)] * 3 + list(late)
    orders = store.execute("SELECT total, revenue, channel FROM orders ORDER BY id").fetchall()
    assert orders == [(10.0, 10.0, None), (20.0, 20.0, None), (12.5, 12.5, "web"), (7.125, 7.125, "web"),
                      (10.1, 10.0, "web")]  # 10.1 - 0.1 exact on PostgreSQL, rounded to 4 places on SQLite
    types = dict(store.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'"
    ).fetchall())
    assert types["total"] == "DOUBLE" and types["placed_at"] == "TIMESTAMP"


@pytest.mark.usefixtures("adbc_only")
def test_timestamps_with_and_without_fractions_and_offsets(db: Database, tenant: Tenant, backend: str) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as session:
        customer = Customer(workspace_id=ws, external_id="c", acquisition_channel="web")
        session.add(customer)
        session.flush()
        cid = customer.id
    _orders(db, ws, cid, [("1", "0")] * 5)
    # The same instant, 2024-03-31 23:30 UTC (00:30 on Apr 1 in Lisbon, summer time), written as text other
    # than SQLAlchemy writes it: no fraction, a fraction, a positive and a negative non-UTC offset.
    naive = "" if backend == "sqlite" else "+00:00"  # SQLite keeps naive UTC text
    written = [f"2024-03-31 23:30:00{naive}", f"2024-03-31 23:30:00.250000{naive}", "2024-04-01 00:30:00+01:00",
               "2024-03-31 18:00:00-05:30", "2024-04-01 01:30:00+02:00"]
    with db.engine.begin() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT id FROM orders ORDER BY id"))]
        for order_id, value in zip(ids, written, strict=True):
            connection.execute(text("UPDATE orders SET placed_at = :v WHERE id = :id"), {"v": value, "id": order_id})
    store = open_store(None)
    extract(db, store, ws, "Europe/Lisbon")
    got = store.execute("SELECT placed_at, dnum FROM orders ORDER BY id").fetchall()
    instant, day = datetime(2024, 3, 31, 23, 30), day_number(date(2024, 4, 1))
    assert got == [(instant, day), (instant.replace(microsecond=250000), day)] + [(instant, day)] * 3


def test_in_memory_sqlite_falls_back_to_the_row_path() -> None:
    made = make_database(Settings(database_url="sqlite://", env="test"))
    db = replace(made, read_engine=made.engine)  # one in-memory database, read where it was written
    try:
        assert ex._adbc_uri(db) is None
        Base.metadata.create_all(db.engine)
        with db.unit_of_work() as session:
            session.add(Workspace(id=1, name="Mem", slug="mem", timezone="UTC"))
            session.flush()
            session.add(Customer(id=1, workspace_id=1, external_id="c", acquisition_channel="web"))
        _orders(db, 1, 1, [("10", "0"), ("12.5", "0.5")])
        store = open_store(None)
        stats = extract(db, store, 1, "UTC")
        assert stats.rows["orders"] == 2
        assert store.execute("SELECT revenue FROM orders ORDER BY id").fetchall() == [(10.0,), (12.0,)]
    finally:
        made.dispose()
