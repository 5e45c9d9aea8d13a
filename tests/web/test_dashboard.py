"""The dashboard: tiles and charts from precomputed analytics, the empty state, the refresh with progress."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from patronage.analytics.models import AnalyticsRefresh
from patronage.kit.db import Database
from patronage.web.console import dashboard_data as data
from patronage.web.formatting import Formatter
from patronage.web.i18n import translator
from tests.conftest import Tenant
from tests.web import analytics_data
from tests.web.conftest import Staff

SERIES = {"labels": ["2024-10", "2024-11", "2024-12"], "starts": ["2024-10-01", "2024-11-01", "2024-12-01"],
          "partial": [False, False, True], "groups": {"all": [0.30, 0.33, 0.5]}}


def test_tile_compares_the_last_two_complete_months() -> None:
    fmt = Formatter("en", "UTC")
    ratio = data.tile(SERIES, "Retention rate", "ratio", True, fmt=fmt, currency="EUR")
    assert (ratio.value, ratio.previous, ratio.change, ratio.good) == ("33.0%", "30.0%", "+3.0 pp", True)
    assert ratio.period == "Nov 2024"  # the partial month (December) is not compared
    churn = data.tile({**SERIES, "groups": {"all": [100, 80, 5]}}, "Churn", "count", False, fmt=fmt, currency="EUR")
    assert (churn.change, churn.good) == ("-20.0 %", True)  # lower churn is good news
    money = data.tile({**SERIES, "groups": {"all": [10, 12.5, 1]}}, "AOV", "money", True,
                      fmt=Formatter("pt", "UTC"), currency="EUR")
    assert money.value == "€ 12,50" or money.value.replace("\xa0", " ") == "€ 12,50"


def test_cohorts_and_rfm_are_shaped_for_the_charts() -> None:
    cohorts = data.cohorts({"cohorts": [
        {"cohort": "2024-01", "start": "2024-01-01", "size": 10, "customers": [10, 4, 2]},
        {"cohort": "2024-02", "start": "2024-02-01", "size": 0, "customers": [0, 0]},
    ]}, Formatter("en"))
    assert cohorts["cells"][:3] == [[0, 0, 1.0], [1, 0, 0.4], [2, 0, 0.2]]
    assert cohorts["cells"][3] == [0, 1, None]  # an empty cohort has no rate, not a division by zero
    rfm = data.rfm({"grid": [{"r": 5, "f": 1, "customers": 7, "monetary": 1.0}],
                    "segments": [{"segment": "Champions", "customers": 7}]}, translator("it"))
    assert rfm["cells"] == [[0, 4, 7]] and rfm["segments"] == [{"name": "Campioni", "customers": 7}]


def test_empty_state_offers_a_refresh_that_shows_progress(staff: Staff, db: Database, tenant: Tenant) -> None:
    page = staff.client.get("/")
    assert page.status_code == 200
    assert "No analytics yet" in page.text and "Refresh analytics" in page.text
    started = staff.client.post("/console/analytics/refresh", data={"csrf_token": staff.csrf},
                                headers={"HX-Request": "true"})
    assert started.status_code == 200
    assert 'hx-trigger="every 2s"' in started.text and "queued" in started.text
    with db.unit_of_work(read_only=True) as session:
        refresh = session.scalars(select(AnalyticsRefresh)).one()
        assert refresh.status == "queued" and refresh.job_id is not None
    polled = staff.client.get("/console/analytics/refresh?was=active")
    assert 'hx-trigger="every 2s"' in polled.text  # still queued: keeps polling
    with db.unit_of_work() as session:
        session.get(AnalyticsRefresh, refresh.id).status = "succeeded"  # type: ignore[union-attr]
    done = staff.client.get("/console/analytics/refresh?was=active")
    assert done.status_code == 204 and done.headers["HX-Refresh"] == "true"  # new results: reload the page


def test_dashboard_shows_precomputed_analytics(staff: Staff, db: Database, tenant: Tenant) -> None:
    analytics_data.store(db, tenant.workspace_id)
    page = staff.client.get("/")
    assert page.status_code == 200
    assert page.text.count('class="tile"') == 8
    found = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', page.text, re.S)
    assert found
    charts = json.loads(found.group(1))
    assert set(charts) == {"retention", "cohorts", "rfm", "funnel", "lifecycle", "tiers"}
    assert len(charts["retention"]["labels"]) == data.TREND_MONTHS
    assert {s["name"] for s in charts["funnel"]} == {"Prospects", "New", "Active", "Loyal", "Advocates"}
    same = staff.client.get("/console/dashboard.json").json()
    assert same["charts"]["rfm"] == charts["rfm"]
    liability = staff.client.get("/console/dashboard/liability")
    assert liability.status_code == 200 and "Not computed yet" in liability.text
    polish = staff.client.get("/?lang=pl")
    assert "Trend retencji" in polish.text and "Wskaźnik retencji" in polish.text


def test_goal_progress(staff: Staff, db: Database, tenant: Tenant) -> None:
    analytics_data.store(db, tenant.workspace_id)
    created = staff.client.post("/console/goals", data={
        "csrf_token": staff.csrf, "name": "Repeat buyers", "kpi": "repeat_purchase_rate", "comparator": "gte",
        "target": "95", "deadline": "2030-12-31"}, follow_redirects=False)
    assert created.status_code == 303
    page = staff.client.get("/")
    assert "Repeat buyers" in page.text and 'role="progressbar"' in page.text
    refused = staff.client.post("/console/goals", data={"csrf_token": staff.csrf, "name": "x", "kpi": "nope",
                                                        "target": "y", "deadline": "z"})
    assert refused.status_code == 422


def test_support_agents_see_no_analytics(client: TestClient, db: Database, tenant: Tenant) -> None:
    from patronage.workspaces import service
    from patronage.workspaces.permissions import Role
    from tests.web.conftest import sign_in

    with db.unit_of_work() as session:
        user = service.create_user(session, email="agent@example.com", password="correct horse battery")
        service.add_member(session, tenant.workspace_id, user, Role.SUPPORT_AGENT, actor="test")
    sign_in(client, "agent@example.com", "correct horse battery")
    page = client.get("/")
    assert page.status_code == 200 and "dashboard-data" not in page.text
    assert client.get("/console/dashboard.json").status_code == 403
