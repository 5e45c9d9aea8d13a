"""``patronage analytics refresh`` and ``patronage report`` against a real (SQLite) database."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from patronage.analytics.settings import get_analytics_settings
from patronage.cli import app
from patronage.config import Settings, get_settings
from patronage.kit.db import Database
from tests.analytics.test_refresh_api import seed
from tests.conftest import Tenant


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_refresh_and_reports(
    db: Database, tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db, tenant.workspace_id)
    monkeypatch.setenv("PATRONAGE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PATRONAGE_ANALYTICS_DIR", "")
    monkeypatch.setenv("PATRONAGE_ANALYTICS_KPI_PERIODS", '["month"]')
    monkeypatch.setenv("PATRONAGE_ANALYTICS_COHORT_PERIODS", '["month"]')
    get_settings.cache_clear()
    get_analytics_settings.cache_clear()
    runner = CliRunner()
    try:
        refreshed = runner.invoke(app, ["analytics", "refresh", "--workspace", tenant.slug])
        assert refreshed.exit_code == 0, refreshed.output
        kpis = runner.invoke(app, ["report", "kpis", "--workspace", tenant.slug, "--kpi", "orders",
                                   "--format", "json"])
        assert kpis.exit_code == 0, kpis.output
        rows = json.loads(kpis.stdout)
        assert sum(r["orders"] for r in rows) == 6
        cohorts = runner.invoke(app, ["report", "cohorts", "--workspace", tenant.slug, "--format", "csv"])
        assert cohorts.exit_code == 0 and cohorts.stdout.startswith("cohort,size,p0")
        rfm = runner.invoke(app, ["report", "rfm", "--workspace", tenant.slug])
        assert rfm.exit_code == 0 and "RFM segments" in rfm.stdout
        missing = runner.invoke(app, ["report", "rfm", "--workspace", "nope"])
        assert missing.exit_code != 0
    finally:
        get_settings.cache_clear()
        get_analytics_settings.cache_clear()
