"""The dashboard's points liability card (both databases): it shows the liability domain's latest snapshot
with its as-of time, and "Recompute now" queues a snapshot and polls until the new one is there."""

from __future__ import annotations

import re

from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.jobs.worker import Worker
from patronage.ledger import service as ledger
from tests.conftest import Tenant
from tests.rewards.helpers import new_customer
from tests.web.conftest import Staff


def test_dashboard_card_shows_the_snapshot_and_recomputes_with_progress(
    staff: Staff, tenant: Tenant, db: Database, settings: Settings
) -> None:
    client = staff.client
    page = client.get("/")
    assert page.status_code == 200 and "Not computed yet" in page.text
    c = new_customer(db, tenant.workspace_id, email="d@example.com")
    with db.unit_of_work() as session:
        ledger.earn(session, tenant.workspace_id, c, 1234, source_type="order", source_id="o-1", reason="t",
                    actor="t")

    asked = client.post("/console/dashboard/liability", data={"csrf_token": staff.csrf},
                        headers={"HX-Request": "true"})
    assert asked.status_code == 200 and 'hx-trigger="every 2s"' in asked.text and "Computing" in asked.text
    poll = re.search(r'hx-get="([^"]+)"', asked.text)
    assert poll
    still = client.get(poll.group(1).replace("&amp;", "&"))
    assert 'hx-trigger="every 2s"' in still.text  # no snapshot yet: keeps polling
    Worker(db, settings).drain()
    done = client.get(poll.group(1).replace("&amp;", "&"))
    assert done.status_code == 200 and "every 2s" not in done.text
    assert "1,234" in done.text and 'id="liability-as-of"' in done.text

    page = client.get("/")
    assert "1,234" in page.text and "As of" in page.text
    gave_up = client.get("/console/dashboard/liability", params={"since": "2999-01-01T00:00:00", "tries": "150"})
    assert "every 2s" not in gave_up.text and "Is the worker running?" in gave_up.text
    junk = client.get("/console/dashboard/liability", params={"since": "yesterday", "tries": "1"})
    assert junk.status_code == 200  # an unreadable time is "no snapshot shown before"
    forged = client.post("/console/dashboard/liability", data={"csrf_token": "nope"})
    assert forged.status_code == 403


def test_refresh_analytics_also_queues_a_liability_snapshot(staff: Staff, tenant: Tenant, db: Database) -> None:
    from sqlalchemy import select

    from patronage.kit.jobs.models import Job
    from patronage.liability.service import SNAPSHOT_TASK

    started = staff.client.post("/console/analytics/refresh", data={"csrf_token": staff.csrf},
                                headers={"HX-Request": "true"})
    assert started.status_code == 200
    with db.unit_of_work(read_only=True) as session:
        queued = session.scalars(select(Job.status).where(Job.task == SNAPSHOT_TASK,
                                                          Job.workspace_id == tenant.workspace_id)).all()
    assert queued == ["queued"]
