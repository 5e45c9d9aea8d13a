"""The reliability battery (docs/reliability.md): fixtures every battery test shares.

- ``soak``: long forms, run by ``make soak`` (``PATRONAGE_SOAK=1 pytest -m soak``) and skipped otherwise.
- After every battery test that touched a database, ``patronage doctor``'s checks run over it and any
  "error" finding fails the test.
- ``live_server``: ``patronage serve`` in a real process (forked from one warm zygote per test worker).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from patronage import domains
from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.doctor import run_checks
from tests.battery.server import LiveServer, Zygote

SOAK = os.environ.get("PATRONAGE_SOAK") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long form of the reliability battery; runs only with PATRONAGE_SOAK=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SOAK:
        return
    skip = pytest.mark.skip(reason="soak: set PATRONAGE_SOAK=1 (make soak)")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)


def doctor_errors(db: Database) -> list[str]:
    with db.unit_of_work(read_only=True) as session:
        findings = run_checks(session, domains.DOCTOR_CHECKS)
    return [f"{f.check}: {f.message}" for f in findings if f.severity == "error"]


@pytest.fixture(autouse=True)
def _doctor_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every battery test ends with `patronage doctor`: an "error" finding fails the test."""
    db: Database | None = request.getfixturevalue("db") if "db" in request.fixturenames else None
    yield
    if db is not None:
        errors = doctor_errors(db)
        if errors:
            pytest.fail("patronage doctor found errors after the test:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    factory = Zygote()
    yield factory
    factory.close()


@pytest.fixture
def live_server(zygote: Zygote, settings: Settings, db: Database, tmp_path: Path) -> Iterator[
        Callable[..., LiveServer]]:
    """``live_server(worker=False, **env)``: a started server process; stopped after the test."""
    started: list[LiveServer] = []

    def start(*, worker: bool = False, **env: str) -> LiveServer:
        server = LiveServer(zygote, settings, tmp_path, worker=worker, **env)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
