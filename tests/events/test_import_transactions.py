"""How an import groups its chunks into transactions (``runner.ChunkTransactions``), on both databases.

SQLite shares one transaction among chunks (a savepoint each) until it is due; PostgreSQL commits every
chunk. Either way a chunk whose bulk path fails on the database is rolled back alone and retried, and an
import that dies loses only its open transaction: re-running the file completes it, exactly once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from patronage.customers.models import Customer
from patronage.events.importer import runner
from patronage.events.models import Order
from patronage.kit.db import Database
from tests.conftest import make_tenant

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)


def write_orders(path: Path, count: int) -> Path:
    lines = [
        json.dumps({"external_id": f"o-{i}", "customer_external_id": f"c-{i % 7}",
                    "placed_at": (T0 + timedelta(hours=i)).isoformat(),
                    "lines": [{"sku": "TEA", "quantity": 1, "unit_price": f"{10 + i}.00"}]})
        for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def counted(db: Database, workspace_id: int) -> tuple[int, int, Any]:
    """Orders, the customers' summed order counts and summed spend (the aggregates must match the rows)."""
    with db.unit_of_work(read_only=True) as s:
        orders = s.scalar(select(func.count()).select_from(Order).where(Order.workspace_id == workspace_id))
        count, spent = s.execute(select(func.sum(Customer.orders_count), func.sum(Customer.total_spent))
                                 .where(Customer.workspace_id == workspace_id)).one()
    return int(orders or 0), int(count or 0), spent


@pytest.fixture(autouse=True)
def _no_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # Transactions here end by their record count only: the outcome must not depend on how fast the
    # machine is (the 2-second budget is ``ChunkTransactions``'s other trigger).
    monkeypatch.setattr(runner, "SQLITE_COMMIT_SECONDS", 3600.0)


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per transaction of chunks committed."""
    seen: list[int] = []
    real = runner.ChunkTransactions.commit

    def commit(self: runner.ChunkTransactions) -> None:
        if self._session is not None:
            seen.append(1)
        real(self)

    monkeypatch.setattr(runner.ChunkTransactions, "commit", commit)
    return seen


def test_chunks_share_transactions_on_sqlite_and_commit_each_on_postgres(
    db: Database, tmp_path: Path, commits: list[int]
) -> None:
    tenant = make_tenant(db)
    path = write_orders(tmp_path / "orders.jsonl", 30)
    report = runner.run_import(db, tenant.workspace_id, "orders", path, "jsonl", chunk_size=3, parallel=False)
    assert (report.read, report.created, report.failed) == (30, 30, 0)
    # SQLite: ten chunks, far below SQLITE_COMMIT_ITEMS: one transaction.
    assert len(commits) == (1 if db.dialect == "sqlite" else 10)
    orders, order_count, spent = counted(db, tenant.workspace_id)
    assert (orders, order_count) == (30, 30)
    assert spent == sum(10 + i for i in range(30))


def test_sqlite_commits_when_the_transaction_is_due(
    db: Database, tmp_path: Path, commits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL commits every chunk")
    monkeypatch.setattr(runner, "SQLITE_COMMIT_ITEMS", 6)
    tenant = make_tenant(db)
    path = write_orders(tmp_path / "orders.jsonl", 30)
    runner.run_import(db, tenant.workspace_id, "orders", path, "jsonl", chunk_size=3, parallel=False)
    assert len(commits) == 5  # every second chunk: 6 orders a transaction
    assert counted(db, tenant.workspace_id)[:2] == (30, 30)


def test_sqlite_commits_when_the_transaction_has_run_its_time(
    db: Database, tmp_path: Path, commits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL commits every chunk")
    monkeypatch.setattr(runner, "SQLITE_COMMIT_SECONDS", 0.0)  # always due: every chunk commits
    tenant = make_tenant(db)
    runner.run_import(db, tenant.workspace_id, "orders", write_orders(tmp_path / "o.jsonl", 9), "jsonl",
                      chunk_size=3, parallel=False)
    assert len(commits) == 3
    assert counted(db, tenant.workspace_id)[:2] == (9, 9)


def test_a_chunk_failing_on_the_database_is_rolled_back_alone_and_retried(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(db)
    path = write_orders(tmp_path / "orders.jsonl", 12)
    real = runner.ingest_orders  # type: ignore[attr-defined]
    calls = {"n": 0}

    def flaky(session: Any, ctx: Any, items: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the second chunk: its rows are written, then the database refuses
            real(session, ctx, items)
            raise OperationalError("INSERT ...", {}, Exception("simulated failure"))
        return real(session, ctx, items)

    monkeypatch.setattr(runner, "ingest_orders", flaky)
    report = runner.run_import(db, tenant.workspace_id, "orders", path, "jsonl", chunk_size=3, parallel=False)
    assert (report.created, report.failed) == (12, 0)
    assert calls["n"] == 5  # four chunks, the second one twice
    orders, order_count, _ = counted(db, tenant.workspace_id)
    assert (orders, order_count) == (12, 12)  # nothing of the failed attempt was kept


def test_an_import_that_dies_loses_only_its_open_transaction_and_a_rerun_completes_it(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(db)
    path = write_orders(tmp_path / "orders.jsonl", 12)
    monkeypatch.setattr(runner, "SQLITE_COMMIT_ITEMS", 6)
    real = runner.ingest_orders  # type: ignore[attr-defined]
    calls = {"n": 0}

    def dies_in_the_fourth_chunk(session: Any, ctx: Any, items: Any) -> Any:
        calls["n"] += 1
        result = real(session, ctx, items)
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(runner, "ingest_orders", dies_in_the_fourth_chunk)
    with pytest.raises(KeyboardInterrupt):
        runner.run_import(db, tenant.workspace_id, "orders", path, "jsonl", chunk_size=3, parallel=False)
    orders, order_count, _ = counted(db, tenant.workspace_id)
    # SQLite committed chunks 1-2 together and lost 3-4 (one transaction); PostgreSQL lost only chunk 4.
    assert (orders, order_count) == ((6, 6) if db.dialect == "sqlite" else (9, 9))
    monkeypatch.setattr(runner, "ingest_orders", real)
    report = runner.run_import(db, tenant.workspace_id, "orders", path, "jsonl", chunk_size=3, parallel=False)
    assert (report.created, report.unchanged, report.failed) == (12 - orders, orders, 0)
    assert counted(db, tenant.workspace_id)[:2] == (12, 12)
