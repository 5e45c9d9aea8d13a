"""The import's reader process: the same orders, errors (with their lines) and progress as reading in
the importing process; the packed form rebuilds the validated order; a bulk load leaves its connection's
settings as it found them."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from patronage.customers.models import Customer
from patronage.events.importer import runner, stream
from patronage.events.importer.packed import OrderCodec, Packed
from patronage.events.importer.prepare import prepare
from patronage.events.importer.readers import open_records
from patronage.events.importer.runner import ImportReport, run_import
from patronage.events.models import Order, OrderLine, Product
from patronage.events.schemas import OrderIn
from patronage.kit.db import BULK_SQLITE_PRAGMAS, Database
from patronage.kit.errors import PatronageError
from patronage.kit.upsert import row_encoder
from tests.conftest import Tenant


def order(n: int, **extra: Any) -> dict[str, Any]:
    lines = [{"sku": "TEA", "quantity": 1 + n % 3, "unit_price": "10.00"},
             {"sku": f"SKU-{n % 4}", "name": f"Thing {n}", "quantity": 1, "unit_price": "2.5", "discount": "0.50"}]
    total = f"{(1 + n % 3) * 10 + 2:.2f}"
    return {"external_id": f"o-{n}", "customer_external_id": f"c-{n % 5}", "placed_at": f"2024-03-{1 + n % 28:02d}T"
            "10:00:00+01:00", "channel": "web", "lines": lines, "total": total, **extra}


def orders_file(path: Path) -> Path:
    rows: list[Any] = [order(n) for n in range(30)]
    rows[3] = "not json {"
    rows[7] = order(7, total="1.00")  # breaks the money rule
    rows[11] = {**order(11), "customer_external_id": None, "customer_email": "Ann@Example.com"}
    rows[12] = order(2, channel="app")  # a changed repeat of o-2 in another chunk
    rows[17] = order(17, status="cancelled", attributes={"gift": True, "note": "tab\tand\\backslash\nline"})
    rows[20] = {**order(20), "lines": [{"sku": "TEA", "quantity": 0, "unit_price": "1"}]}
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def stored(db: Database, workspace_id: int) -> tuple[list[Any], list[Any], list[Any]]:
    o, line, c = Order.__table__.c, OrderLine.__table__.c, Customer.__table__.c
    with db.unit_of_work(read_only=True) as s:
        orders = s.execute(
            select(o.external_id, o.currency, o.subtotal, o.discount_total, o.shipping_total, o.tax_total,
                   o.other_total, o.taxes_included, o.total, o.refunded_total, o.channel, o.store, o.status,
                   o.placed_at, o.attributes, o.source, o.content_hash)
            .where(o.workspace_id == workspace_id).order_by(o.external_id)).all()
        lines = s.execute(
            select(o.external_id, line.position, line.line_id, line.sku, line.name, line.category, line.quantity,
                   line.unit_price, line.discount, line.is_reward)
            .join(Order.__table__, o.id == line.order_id)
            .where(line.workspace_id == workspace_id).order_by(o.external_id, line.position)).all()
        customers = s.execute(
            select(c.external_id, c.email, c.orders_count, c.total_spent, c.first_order_at, c.last_order_at)
            .where(c.workspace_id == workspace_id).order_by(c.external_id, c.email)).all()
    return orders, lines, customers


def imported(db: Database, workspace_id: int, source: Path, errors: Path, *, parallel: bool) -> tuple[Any, ...]:
    consumed: list[int] = []
    report: ImportReport = run_import(db, workspace_id, "orders", source, "jsonl", errors_path=errors,
                                      chunk_size=4, progress=consumed.append, parallel=parallel)
    return report, sum(consumed)


def test_the_reader_process_imports_exactly_like_reading_inline(
    db: Database, tenant: Tenant, other_tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[bool] = []
    read_in_background = stream.order_chunks_in_background
    monkeypatch.setattr(runner, "can_fork", lambda: True)  # a test run may have threads of its own
    monkeypatch.setattr(runner, "order_chunks_in_background",
                        lambda s: (started.append(True), read_in_background(s))[1])
    source = orders_file(tmp_path / "orders.jsonl")
    for ws in (tenant.workspace_id, other_tenant.workspace_id):  # lines without a category take the catalogue's
        with db.unit_of_work() as s:
            s.add(Product(workspace_id=ws, sku="TEA", name="Sencha", category="Tea"))
    inline, inline_bytes = imported(db, tenant.workspace_id, source, tmp_path / "a.csv", parallel=False)
    background, background_bytes = imported(db, other_tenant.workspace_id, source, tmp_path / "b.csv",
                                            parallel=True)

    assert started == [True]  # the second import did read in a process of its own
    assert (inline.read, inline.created, inline.updated, inline.failed) == (30, 26, 1, 3)
    assert {**background.as_dict(), "seconds": 0} == {**inline.as_dict(), "seconds": 0}
    assert inline_bytes == background_bytes == source.stat().st_size
    report = (tmp_path / "a.csv").read_text()
    assert report == (tmp_path / "b.csv").read_text()
    assert [row.split(",")[:2] for row in report.splitlines()[1:]] == [["4", ""], ["8", "o-7"], ["21", "o-20"]]
    inline_rows, background_rows = stored(db, tenant.workspace_id), stored(db, other_tenant.workspace_id)
    assert inline_rows == background_rows
    orders, lines, _ = inline_rows
    assert {row.sku: (row.name, row.category) for row in lines if row.sku == "TEA"} == {"TEA": ("Sencha", "Tea")}
    assert next(o for o in orders if o.external_id == "o-17").attributes["note"] == "tab\tand\\backslash\nline"

    again, _ = imported(db, other_tenant.workspace_id, source, tmp_path / "c.csv", parallel=True)
    # o-2 twice (an older then the newer snapshot): updated back and forth, ending as before.
    assert (again.created, again.updated, again.unchanged, again.failed) == (0, 2, 25, 3)
    assert stored(db, other_tenant.workspace_id) == background_rows


def test_a_failing_reader_process_fails_the_import_as_reading_inline_does(
    db: Database, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "can_fork", lambda: True)
    source = tmp_path / "broken.jsonl"
    source.write_bytes(json.dumps(order(1)).encode() + b"\n\xff\xfe not utf-8\n")
    for parallel in (False, True):
        with pytest.raises(UnicodeDecodeError):
            run_import(db, tenant.workspace_id, "orders", source, "jsonl", parallel=parallel)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_packed_order_rebuilds_the_validated_order(dialect: str) -> None:
    for raw in (order(1), order(17, status="cancelled", attributes={"a": [1, 2.5, None]}),
                {**order(2), "currency": "usd", "taxes_included": True, "tax_total": "1.00", "total": None}):
        packed = OrderCodec(dialect, "EUR").pack(prepare(raw))
        assert packed.model() == OrderIn.model_validate(raw)


def test_encoded_rows_are_plain_values() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    table = Order.__table__
    columns = ("subtotal", "placed_at", "attributes", "taxes_included", "store")
    row = (Decimal("12.50"), datetime(2024, 3, 1, 9, tzinfo=UTC), {"a": 1}, True, None)
    assert row_encoder("sqlite", table, columns)(row) == (12.5, "2024-03-01 09:00:00.000000", '{"a": 1}', 1, None)
    assert row_encoder("postgresql", table, columns)(row) == (
        "12.50", "2024-03-01T09:00:00+00:00", '{"a": 1}', True, None)


def test_a_bulk_load_tunes_its_connection_and_restores_it(db: Database, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite connection settings")
    with db.bulk_load() as bulk, bulk.unit_of_work() as session:
        raw: Any = session.connection().connection.dbapi_connection
        assert session.execute(text("PRAGMA cache_size")).scalar() == BULK_SQLITE_PRAGMAS["cache_size"]
    assert raw.execute("PRAGMA cache_size").fetchone()[0] != BULK_SQLITE_PRAGMAS["cache_size"]
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] != BULK_SQLITE_PRAGMAS["wal_autocheckpoint"]


def test_a_reader_process_ends_when_the_import_stops_early(tmp_path: Path) -> None:
    import time

    source = tmp_path / "many.jsonl"  # chunks far larger than a pipe's buffer: the reader blocks sending
    source.write_text("".join(json.dumps(order(n, attributes={"pad": "x" * 500})) + "\n" for n in range(3000)))
    chunks = stream.order_chunks_in_background(stream.OrderFile(source, "jsonl", 1000, "sqlite", "EUR"))
    assert len(next(chunks).orders) == 1000
    started = time.monotonic()
    chunks.close()
    assert time.monotonic() - started < 5  # not the 10 s join timeout: the reader saw the pipe close


def edge_cases_file(path: Path) -> Path:
    rows: list[Any] = [order(n) for n in range(12)]
    rows[1] = {**order(1), "external_id": "  o-1  "}  # padded: reported as written
    rows[2] = "[1, 2]"
    rows[3] = {**order(3), "lines": [{"sku": "TEA", "quantity": 2, "unit_price": 10.0}], "total": None}
    rows[4] = {**order(4), "customer_external_id": None, "customer_email": " Ann@Example.com "}
    rows[5] = {**order(5), "store": "nul\x00", "unknown": 1}
    rows[6] = {**order(6), "lines": [{"sku": "TEA", "quantity": 10**7, "unit_price": "1"}]}
    rows[7] = {**order(7), "discount_total": "1.5", "total": None, "attributes": {"a": [1, 2.5e3]}}
    rows[8] = {**order(8), "total": "999.00"}
    rows[9] = '{"external_id": "o-9", "placed_at": '
    rows[10] = {key: value for key, value in order(10).items() if key != "placed_at"}
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_bytes(b"\xef\xbb\xbf" + text.replace('"o-11"', '"o-11" ').encode() + b"\n  \n")
    return path


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_json_lines_read_as_records_one_by_one_would(tmp_path: Path, dialect: str) -> None:
    # The reader validates JSON Lines from their bytes; parsing each record and validating it as the API
    # does must give the same packed orders (values, hashes, canonical JSON) and the same failures.
    source = edge_cases_file(tmp_path / "edges.jsonl")
    codec = OrderCodec(dialect, "EUR")
    expected_orders, expected_failures = [], []
    for record in open_records(source, "jsonl", "orders"):
        item = stream.validate_order(record)
        if isinstance(item, PatronageError):
            expected_failures.append((record.line, record.key, *stream.describe(item)))
        else:
            expected_orders.append(codec.pack(item, record.line, record.key))
    chunks = list(stream.order_chunks(stream.OrderFile(source, "jsonl", 5, dialect, "EUR")))
    assert [p for c in chunks for p in c.orders] == expected_orders
    assert [f for c in chunks for f in c.failures] == expected_failures
    assert len(expected_failures) == 6 and expected_orders[1].key == "  o-1  "


def test_a_chunk_crosses_the_pipe_unchanged(tmp_path: Path) -> None:
    source = edge_cases_file(tmp_path / "edges.jsonl")
    for chunk in stream.order_chunks(stream.OrderFile(source, "jsonl", 100, "postgresql", "EUR")):
        back = pickle.loads(pickle.dumps(chunk))
        assert (back.read, back.consumed, back.orders, back.failures) == (
            chunk.read, chunk.consumed, chunk.orders, chunk.failures)
        assert all(isinstance(p, Packed) for p in back.orders)
        assert [p.model() for p in back.orders] == [p.model() for p in chunk.orders]
