from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from patronage.cli import app
from patronage.config import Settings
from patronage.customers.models import Customer
from patronage.events.models import BehaviourEvent, Order, OrderLine, Return
from patronage.kit.db import Database
from patronage.kit.idranges import from_ranges
from tests.conftest import Tenant
from tests.events.helpers import count, customer, domain_events

ORDERS_CSV = """\
external_id,customer_external_id,placed_at,currency,channel,shipping_total,total,line_id,sku,name,quantity,unit_price,line_discount,is_reward
A-1,c-1,2024-01-05T10:00:00Z,EUR,web,4.90,34.90,1,TEA-1,Green tea,2,10.00,,
A-1,c-1,2024-01-05T10:00:00Z,EUR,web,4.90,34.90,2,MUG-1,Mug,1,15.00,5.00,false
A-2,c-2,2024-01-06T10:00:00+01:00,,store,,12.00,1,TEA-1,Green tea,1,12.00,,
A-3,c-1,2024-01-07T10:00:00Z,EUR,web,,99.00,1,TEA-1,Green tea,1,12.00,,
A-4,c-3,2024-01-08 10:00:00,EUR,web,,12.00,1,TEA-1,Green tea,1,12.00,,
A-5,c-3,2024-01-09T10:00:00Z,EUR,app,,7.00,1,TEA-1,Green tea,1,12.00,,
A-5,c-3,2024-01-09T10:00:00Z,EUR,app,,7.00,2,,Reward,1,-5.00,,true
"""


def orders_jsonl(path: Path) -> None:
    lines = [
        {"external_id": "J-1", "customer_external_id": "c-9", "placed_at": "2024-02-01T08:00:00Z",
         "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": "8.50"}], "total": "8.50"},
        "this is not json",
        {"external_id": "J-2", "customer_email": "Zoe@Example.com", "placed_at": "2024-02-02T08:00:00Z",
         "lines": [{"sku": "TEA-1", "quantity": 2, "unit_price": "8.50"}]},
        {"external_id": "J-3", "placed_at": "2024-02-03T08:00:00Z", "lines": []},
    ]
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, tenant: Tenant):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("patronage.config.get_settings", lambda: settings)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["import", *args, "--workspace", tenant.slug])
        return result.exit_code, result.output

    return invoke


def errors_of(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_import_orders_csv_with_error_report_and_rerun(run, db: Database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "orders.csv"
    source.write_text(ORDERS_CSV)
    report = tmp_path / "errors.csv"
    code, output = run("orders", str(source), "--errors", str(report))
    assert code == 1, output  # some rows failed
    assert "3 created" in output and "2 failed" in output
    errors = errors_of(report)
    assert [(e["line"], e["external_id"], e["field"]) for e in errors] == [
        ("5", "A-3", "total"), ("6", "A-4", "placed_at")]
    assert count(db, Order) == 3 and count(db, OrderLine) == 5
    # One batch event for the chunk instead of an order.recorded per order (docs/ingestion.md).
    assert domain_events(db, "order.recorded") == []
    (batch,) = domain_events(db, "orders.imported")
    with db.unit_of_work(read_only=True) as s:
        ids = sorted(s.scalars(select(Order.id)))
    assert batch.payload["count"] == 3 and list(from_ranges(batch.payload["order_ids"])) == ids
    assert batch.payload["source"] == "import" and batch.payload["earn"] is True
    (created,) = domain_events(db, "customers.imported")
    assert created.payload["count"] == 3  # c-1, c-2 and c-3 were unknown
    c1 = customer(db, "c-1")
    assert (c1.orders_count, c1.total_spent) == (1, Decimal("34.90"))
    assert customer(db, "c-3").total_spent == Decimal("7.00")

    code, output = run("orders", str(source), "--errors", str(report))
    assert "0 created" in output and "3 unchanged" in output
    assert count(db, Order) == 3 and len(domain_events(db, "orders.imported")) == 1
    assert len(domain_events(db, "customers.imported")) == 1
    assert customer(db, "c-1").total_spent == Decimal("34.90")


def test_import_orders_jsonl_and_other_kinds(run, db: Database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "orders.jsonl"
    orders_jsonl(source)
    report = tmp_path / "errors.csv"
    code, output = run("orders", str(source), "--errors", str(report), "--chunk-size", "2")
    assert code == 1
    assert [(e["line"], e["field"]) for e in errors_of(report)] == [("2", ""), ("4", "customer_external_id")]
    assert count(db, Order) == 2
    assert customer(db, "c-9").orders_count == 1

    customers = tmp_path / "customers.csv"
    customers.write_text("external_id,email,first_name,tags\nc-9,nine@example.com,Nina,vip|early\n"
                         "c-10,not-an-email,Ten,\n")
    code, output = run("customers", str(customers), "--errors", str(report))
    assert "1 updated" in output and "1 failed" in output
    assert errors_of(report)[0]["field"] == "email"
    assert customer(db, "c-9").first_name == "Nina"

    returns = tmp_path / "returns.jsonl"
    returns.write_text(
        json.dumps({"external_id": "R-1", "order_external_id": "J-1", "amount": "2.00"}) + "\n"
        + json.dumps({"external_id": "R-2", "order_external_id": "J-1", "amount": "50.00"}) + "\n"
        + json.dumps({"external_id": "R-3", "order_external_id": "later"}) + "\n"
    )
    code, output = run("returns", str(returns), "--errors", str(report))
    assert "2 created" in output and "1 failed" in output
    assert errors_of(report)[0]["field"] == "amount"
    assert count(db, Return, Return.status == "held") == 1

    events = tmp_path / "events.csv"
    events.write_text(
        "external_id,type,customer_external_id,occurred_at,properties.url\n"
        "E-1,page_view,c-9,2024-02-01T08:00:00Z,https://shop.test/\n"
        "E-2,page_view,c-11,2024-02-01T08:01:00Z,\n"
        "E-3,page_view,c-11,2024-02-01T08:02:00Z,https://shop.test/x\n"
    )
    code, output = run("events", str(events), "--errors", str(report))
    assert "2 created" in output and "1 failed" in output
    assert errors_of(report)[0]["field"] == "properties.url"
    code, output = run("events", str(events))
    assert "2 unchanged" in output
    assert count(db, BehaviourEvent) == 2 and count(db, Customer) >= 3
    assert len(domain_events(db, "event.recorded")) == 2

    unknown = tmp_path / "orders.txt"
    unknown.write_text("x")
    code, output = run("orders", str(unknown))
    assert code != 0 and "--format" in output
