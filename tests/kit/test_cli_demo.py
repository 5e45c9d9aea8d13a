"""``patronage demo`` end to end, as ``make run`` calls it: the demo workspace must open on real data
(the CDNOW customers with points and liability, KPIs, RFM and CLV scores), not on empty pages."""

from __future__ import annotations

from sqlalchemy import func, select

from patronage import cli
from patronage.analytics.models import AnalyticsResult, CustomerScores
from patronage.customers.models import Customer
from patronage.events.models import Order
from patronage.kit.db import Database
from patronage.ledger.models import LedgerTransaction
from patronage.liability.models import LiabilitySnapshot
from patronage.workspaces.models import Workspace
from tests.kit.test_cli import cli_db, run

__all__ = ["cli_db"]  # the fixture, re-used from the CLI tests


def test_the_demo_workspace_is_full_of_real_data(cli_db: Database) -> None:
    out = run("demo").output
    assert "Demo ready" in out and "@example.com" in out  # the owner's login and a member to try the portal
    with cli_db.unit_of_work(read_only=True) as session:
        ws = session.scalars(select(Workspace).where(Workspace.slug == cli.DEMO_SLUG)).one()

        def scalar(stmt):  # type: ignore[no-untyped-def]
            return session.scalar(stmt)

        assert scalar(select(func.count()).select_from(Customer).where(Customer.workspace_id == ws.id)) == 23_570
        assert scalar(select(func.count()).select_from(Order).where(Order.workspace_id == ws.id)) == 69_659
        assert scalar(select(func.count()).select_from(LedgerTransaction)
                      .where(LedgerTransaction.workspace_id == ws.id)) > 60_000
        snapshot = session.scalars(select(LiabilitySnapshot).where(LiabilitySnapshot.workspace_id == ws.id)).one()
        assert snapshot.outstanding > 0
        keys = set(session.scalars(select(AnalyticsResult.key).where(AnalyticsResult.workspace_id == ws.id)))
        assert any(k.startswith("kpi/") for k in keys) and any(k.startswith("cohorts/") for k in keys)
        scored = scalar(select(func.count()).select_from(CustomerScores).where(
            CustomerScores.workspace_id == ws.id, CustomerScores.p_alive.is_not(None),
            CustomerScores.rfm_segment.is_not(None)))
        assert scored == 23_570
    run("doctor")  # exits 1 on any integrity error: ledger, aggregates, liability
