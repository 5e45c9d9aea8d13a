"""Liability on both databases: four months of earning, spending, expiry, reversal and adjustment with a
frozen clock; the statement reconciles to the ledger exactly and the report values what is left."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.ledger import service as ledger
from patronage.ledger.maintenance import settle_due
from patronage.liability import service
from tests.conftest import Tenant
from tests.rewards.helpers import new_customer


def at(month: int, day: int) -> datetime:
    return datetime(2025, month, day, 10, tzinfo=UTC)


def history(db: Database, ws: int, a: int, b: int) -> None:
    """Three closed monthly cohorts (Jan-Mar) and an open one (Apr); see the comments for the numbers."""

    def step(when: datetime, action: str, customer: int, points: int = 0, **kw: object) -> None:
        clock.freeze(when)
        with db.unit_of_work() as session:
            if action == "earn":
                ledger.earn(session, ws, customer, points, source_type="order", reason="t", actor="t", **kw)
            elif action == "spend":
                ledger.spend(session, ws, customer, points, source_type="reward", reason="t", actor="t", **kw)
            elif action == "reverse":
                ledger.reverse(session, ws, customer, source_type="order", points=points, reason="t", actor="t",
                               **kw)
            elif action == "adjust":
                ledger.adjust(session, ws, customer, points, reason="goodwill", actor="t", **kw)
            else:
                settle_due(session, ws)

    step(at(1, 10), "earn", a, 1000, source_id="a-jan")
    step(at(1, 10), "earn", b, 1000, source_id="b-jan", pending_until=at(1, 20))
    step(at(1, 15), "spend", a, 600, source_id="s1")          # Jan: 600 redeemed
    step(at(2, 12), "settle", a)                               # Jan: 400 (A) + 1000 (B) expire
    step(at(2, 12), "earn", a, 2000, source_id="a-feb")
    step(at(2, 20), "spend", a, 1500, source_id="s2")         # Feb: 1500 redeemed
    step(at(3, 13), "settle", a)                               # Feb: 500 expire
    step(at(3, 14), "earn", a, 1000, source_id="a-mar")
    step(at(3, 14), "earn", b, 300, source_id="b-mar")
    step(at(3, 15), "reverse", b, 100, source_id="b-mar")    # Mar: 100 reversed (a partial return)
    step(at(3, 16), "adjust", a, 50, source_id="goodwill-1")
    step(at(3, 20), "spend", a, 900, source_id="s3")          # Mar: 900 redeemed
    step(at(4, 20), "settle", a)                               # Mar: 100 + 50 (A) + 200 (B) expire
    step(at(4, 20), "earn", a, 800, source_id="a-apr")
    step(at(4, 25), "spend", a, 100, source_id="s4")
    step(at(4, 28), "earn", b, 400, source_id="b-apr", pending_until=at(5, 10))


def test_statement_reconciles_and_liability_is_valued_net_of_breakage(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    ws = tenant.workspace_id
    clock.freeze(at(1, 1))
    settings = {"expiry_policy": "after_earning", "expiry_months": 1, "cost_per_point": "0.02",
                "breakage_rate": "0.1"}
    assert client.put("/api/v1/loyalty/settings", headers=tenant.headers, json=settings).status_code == 200
    a = new_customer(db, ws, email="a@example.com")
    b = new_customer(db, ws, email="b@example.com")
    history(db, ws, a, b)
    clock.freeze(at(5, 1))

    march = client.get("/api/v1/reports/liability/statement", headers=tenant.headers,
                       params={"start": "2025-03-01", "end": "2025-03-31"})
    assert march.status_code == 200, march.text
    body = march.json()
    assert body["opening"]["total"] == 500  # February's lot, not yet expired on 1 March
    assert body["movements"] == {"earned": 1300, "released": 0, "redeemed": -900, "expired": -500,
                                 "reversed": -100, "adjusted": 50, "transferred": 0}
    assert body["closing"]["total"] == 350 and body["reconciles"] is True and body["difference"] == 0
    assert Decimal(body["values"]["closing"]) == Decimal("7.00")

    # Every day of the history, in one statement and in daily slices, reconciles; the closing is the
    # sum of the customers' balances.
    with db.unit_of_work(read_only=True) as session:
        whole = service.statement(session, ws, start=date(2025, 1, 1), end=date(2025, 4, 30))
        balances = [ledger.balance(session, ws, c) for c in (a, b)]
        assert whole.reconciliation.reconciles and whole.opening["total"] == 0
        assert whole.closing["total"] == sum(x.available + x.pending - x.clawback_owed for x in balances) == 1100
        assert whole.closing["pending"] == 400
        assert whole.movements["released"] == 0 and whole.movements_by_bucket["released"]["pending"] == -1000
        day, closing = date(2025, 1, 1), 0
        while day <= date(2025, 4, 30):
            one = service.statement(session, ws, start=day, end=day, basis="occurred")
            assert one.reconciliation.reconciles and one.opening["total"] == closing
            closing, day = one.closing["total"], day + timedelta(days=1)
        assert closing == 1100

    report = client.get("/api/v1/reports/liability", headers=tenant.headers).json()
    assert (report["available"]["points"], report["pending"]["points"]) == (700, 400)
    assert Decimal(report["outstanding"]["value"]) == Decimal("22.00")
    assert report["breakage"]["method"] == "observed"
    # Closed cohorts: expired 1400 + 500 + 350 = 2250, redeemed 600 + 1500 + 900 = 3000.
    assert (report["breakage"]["expired"], report["breakage"]["redeemed"]) == (2250, 3000)
    assert Decimal(report["breakage"]["rate"]) == Decimal("0.4286")
    assert Decimal(report["liability_net"]) == Decimal("12.57")
    assert Decimal(report["breakage_value"]) == Decimal("9.43")
    assert report["by_age"][0]["available"]["points"] == 700 and report["by_age"][0]["pending"]["points"] == 400
    assert report["expiring_30_days"]["points"] == 1100

    cohorts = {c["month"]: c for c in client.get("/api/v1/reports/liability/breakage",
                                                 headers=tenant.headers).json()["cohorts"]}
    assert cohorts["2025-03"] | {"closed": True} == {"month": "2025-03", "issued": 1350, "redeemed": 900,
                                                      "expired": 350, "reversed": 100, "other": 0, "remaining": 0,
                                                      "closed": True}
    assert cohorts["2025-04"]["closed"] is False and cohorts["2025-04"]["remaining"] == 1100

    bad = client.get("/api/v1/reports/liability/statement", headers=tenant.headers,
                     params={"start": "2025-03-31", "end": "2025-03-01"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "end"


def test_breakage_falls_back_to_the_configured_rate_without_history(client: TestClient, tenant: Tenant,
                                                                   db: Database) -> None:
    clock.freeze(at(1, 1))
    client.put("/api/v1/loyalty/settings", headers=tenant.headers, json={"breakage_rate": "0.25"})
    c = new_customer(db, tenant.workspace_id, email="c@example.com")
    with db.unit_of_work() as session:
        ledger.earn(session, tenant.workspace_id, c, 1000, source_type="t", source_id="1", reason="t", actor="t")
    report = client.get("/api/v1/reports/liability", headers=tenant.headers).json()
    assert report["breakage"]["method"] == "configured" and Decimal(report["liability_net"]) == Decimal("7.50")
