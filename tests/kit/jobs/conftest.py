from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, select

from patronage.config import Settings
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job
from patronage.kit.jobs.registry import REGISTRY
from patronage.kit.jobs.worker import Worker
from tests.kit.jobs import sample_tasks


@pytest.fixture(autouse=True)
def _only_our_periodic_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other domains' periodic tasks would fire as these tests move the clock; the tests add their own."""
    monkeypatch.setattr(REGISTRY, "periodic", {})


@pytest.fixture(scope="session")
def _postgres_runs_table(postgres_url: str) -> Iterator[None]:
    """Created once per test database (DDL per test is slow) and dropped at the end of the session."""
    engine = create_engine(postgres_url)
    sample_tasks.RUNS_METADATA.create_all(engine)
    yield
    sample_tasks.RUNS_METADATA.drop_all(engine)
    engine.dispose()


@pytest.fixture
def runs(db: Database, backend: str, request: pytest.FixtureRequest) -> None:
    """The ``test_job_runs`` table, empty. Never in the application's metadata, so no migration sees it."""
    if backend == "postgres":
        request.getfixturevalue("_postgres_runs_table")
        with db.engine.begin() as conn:
            conn.execute(delete(sample_tasks.job_runs))
    else:
        sample_tasks.RUNS_METADATA.create_all(db.engine)  # a fresh database file per test
    sample_tasks.EXECUTIONS.clear()
    sample_tasks.BATCH_CALLS.clear()


@pytest.fixture
def worker(db: Database, settings: Settings) -> Worker:
    return Worker(db, settings, name="test-worker")


def run_rows(db: Database) -> list[dict[str, Any]]:
    with db.unit_of_work(read_only=True) as session:
        rows = session.execute(select(sample_tasks.job_runs).order_by(sample_tasks.job_runs.c.id))
        return [dict(r._mapping) for r in rows]


def load_job(db: Database, job_id: int) -> Job:
    with db.unit_of_work(read_only=True) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job
