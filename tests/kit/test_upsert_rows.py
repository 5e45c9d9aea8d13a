"""kit.upsert.insert_rows: every row stored as given, also where values compare equal but differ."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, Table, select

from patronage.kit.db import Database
from patronage.kit.types import JSONType, Money
from patronage.kit.upsert import insert_rows

METADATA = MetaData()
SAMPLES = Table(
    "upsert_samples", METADATA,
    Column("id", BigInteger, primary_key=True),
    Column("data", JSONType, nullable=False),
    Column("amount", Money, nullable=False),
)


def test_equal_but_different_values_are_each_converted(db: Database) -> None:
    # True == 1 and {"flag": True} == {"flag": 1}: a column that only *compares* equal throughout must
    # still be converted row by row (JSON true and 1 are different documents).
    rows: list[tuple[Any, ...]] = [
        (1, {"flag": True}, Decimal("0")),
        (2, {"flag": 1}, Decimal("0.00")),
        (3, {"flag": True}, Decimal("0")),
    ]
    METADATA.create_all(db.engine)
    try:
        with db.unit_of_work() as session:
            insert_rows(session, SAMPLES, ("id", "data", "amount"), rows)
        with db.unit_of_work(read_only=True) as session:
            stored = session.execute(select(SAMPLES.c.data, SAMPLES.c.amount).order_by(SAMPLES.c.id)).all()
    finally:
        METADATA.drop_all(db.engine)
    assert [type(data["flag"]) for data, _ in stored] == [bool, int, bool]
    assert [amount for _, amount in stored] == [0, 0, 0]


def test_one_shared_value_fills_every_row(db: Database) -> None:
    shared = {"source": "import"}
    METADATA.create_all(db.engine)
    try:
        with db.unit_of_work() as session:
            insert_rows(session, SAMPLES, ("id", "data", "amount"), [(i, shared, Decimal("1.5")) for i in range(1, 4)])
        with db.unit_of_work(read_only=True) as session:
            stored = session.execute(select(SAMPLES.c.data, SAMPLES.c.amount)).all()
    finally:
        METADATA.drop_all(db.engine)
    assert stored == [(shared, Decimal("1.5"))] * 3
