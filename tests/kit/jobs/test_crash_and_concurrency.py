"""Real processes and threads: a worker killed mid-job, and many workers claiming from one queue."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs import enqueue
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.worker import Worker
from tests.kit.jobs import sample_tasks
from tests.kit.jobs.conftest import load_job, run_rows

REPO_ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("runs")

# `patronage worker`, exactly as operators run it, with the test tasks registered first.
WORKER_SCRIPT = "import tests.kit.jobs.sample_tasks; from patronage.cli import app; app(['worker'])"


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def test_a_job_whose_worker_is_killed_runs_again_after_its_lease(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    with db.unit_of_work() as session:
        job_id = enqueue(session, "test.sleepy", {"key": "crash", "sleep": 300})
    assert job_id is not None
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PATRONAGE_DATABASE_URL": settings.database_url,
        "PATRONAGE_ENV": "test",
        "PATRONAGE_LOG_LEVEL": "WARNING",
        "PATRONAGE_WORKER_POLL_INTERVAL": "0.05",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT], cwd=REPO_ROOT, env=env, stdout=out, stderr=out
        )
        try:
            _wait_for(lambda: load_job(db, job_id).status == JobStatus.RUNNING or proc.poll() is not None,
                      "the worker to claim the job")
            assert proc.poll() is None, log.read_text()
            proc.send_signal(signal.SIGKILL)  # no chance to clean up: the job stays 'running'
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)

    orphan = load_job(db, job_id)
    assert (orphan.status, orphan.attempts) == (JobStatus.RUNNING, 1)
    assert orphan.lease_expires_at is not None
    survivor = Worker(db, settings, name="survivor")
    assert survivor.run_once() == 0  # the lease still holds: nobody else may run it yet

    clock.freeze(orphan.lease_expires_at + timedelta(seconds=1))
    assert survivor.run_once() == 1
    done = load_job(db, job_id)
    assert (done.status, done.attempts, done.locked_by) == (JobStatus.SUCCEEDED, 2, "survivor")
    assert [(r["key"], r["attempt"]) for r in run_rows(db)] == [("crash", 2)]


WORKERS = 4
JOBS = 200


def test_concurrent_workers_run_every_job_exactly_once(db: Database, settings: Settings, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("concurrent claiming needs PostgreSQL (SKIP LOCKED); SQLite runs one worker")
    with db.unit_of_work() as session:
        for n in range(JOBS):
            enqueue(session, "test.record", {"key": f"job-{n}"})
    clock.freeze(datetime.now(UTC))  # every job is due; no retry can become due mid-test
    start = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        worker = Worker(db, settings, name=f"w{n}")
        try:
            start.wait()
            while worker.run_once(limit=10):
                pass
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,), name=f"w{n}") for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []

    executions = collections.Counter(sample_tasks.EXECUTIONS)
    assert len(executions) == JOBS and set(executions.values()) == {1}  # each ran once, none twice
    rows = run_rows(db)
    assert len(rows) == JOBS and len({r["job_id"] for r in rows}) == JOBS
    assert len({r["worker"] for r in rows}) > 1  # the work really was shared
    with db.unit_of_work(read_only=True) as session:
        statuses = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    assert statuses == {JobStatus.SUCCEEDED: JOBS}
