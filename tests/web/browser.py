"""Browser-test helpers: the live server per database, Chromium, axe-core checks, screenshots."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patronage.config import Settings
from patronage.kit.db import Database, make_database
from patronage.kit.models import Base
from tests.web.live import Live, live_server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

AXE = Path(__file__).resolve().parent / "assets" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def _sqlite_database(settings: Settings) -> Database:
    db = make_database(settings)
    Base.metadata.create_all(db.engine)
    return db


def _postgres_database(settings: Settings) -> Database:
    from tests.conftest import empty_postgres

    db = make_database(settings)
    empty_postgres(db)
    return db


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, chromium_path: str) -> Iterator[Live]:
    """The application served for real, on SQLite and (when reachable) PostgreSQL."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory(prefix="patronage-browser-") as tmp, \
                live_server(f"sqlite:///{tmp}/browser.db", _sqlite_database) as server:
            yield server
    else:
        url: str = request.getfixturevalue("postgres_url")
        with live_server(url, _postgres_database) as server:
            yield server
    server.db.dispose()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_context(browser: Any, *, phone: bool = False, **extra: Any) -> Any:
    """A fresh profile with axe-core injected into every page (as an init script, so the pages' strict
    Content-Security-Policy, which forbids inline scripts, does not block it)."""
    options: dict[str, Any] = {"viewport": PHONE if phone else DESKTOP, "device_scale_factor": 1, **extra}
    if phone:
        options.update(is_mobile=True, has_touch=True)
    context = browser.new_context(**options)
    context.add_init_script(path=str(AXE))
    context.set_default_timeout(15_000)
    return context


def check_accessibility(page: Any, name: str) -> None:
    """axe-core over the page: no serious or critical WCAG 2.1 A/AA violation."""
    violations = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }""",
        WCAG_TAGS,
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, f"accessibility violations on {name}: {serious}"


def screenshot(page: Any, name: str, live: Live, *, full_page: bool = False) -> None:
    """Saved for the docs from the SQLite run only (same pages on PostgreSQL)."""
    if live.settings.is_sqlite:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def both_widths(page: Any, name: str, live: Live) -> None:
    """Screenshots at phone (390x844) and desktop (1440x900) widths of the current page."""
    if not live.settings.is_sqlite:
        return
    current = page.viewport_size
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone", live, full_page=True)
    page.set_viewport_size(DESKTOP)
    screenshot(page, f"{name}-desktop", live)
    page.set_viewport_size(current)
