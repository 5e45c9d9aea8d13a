"""kit.upsert id allocation: blocks drawn by concurrent sessions never share an id."""

from __future__ import annotations

import threading
from typing import cast

import pytest
from sqlalchemy import Table

from patronage.customers.models import Customer
from patronage.kit.db import Database
from patronage.kit.upsert import allocate_ids

CUSTOMERS = cast(Table, Customer.__table__)


def test_a_block_is_consecutive_fresh_ids_on_one_writer(db: Database) -> None:
    with db.unit_of_work() as session:
        ids = allocate_ids(session, CUSTOMERS, 5)
        assert allocate_ids(session, CUSTOMERS, 0) == []
    assert len(set(ids)) == 5 and min(ids) >= 1


@pytest.mark.parametrize("backend", ["postgres"])
def test_concurrent_sessions_draw_disjoint_ids(db: Database) -> None:
    blocks: list[list[int]] = []
    start = threading.Barrier(3)

    def draw() -> None:
        with db.unit_of_work() as session:
            start.wait(10)
            blocks.append(allocate_ids(session, CUSTOMERS, 20_000))

    threads = [threading.Thread(target=draw) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [len(block) for block in blocks] == [20_000] * 3
    assert len(set().union(*blocks)) == 60_000
