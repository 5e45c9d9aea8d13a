"""Queue semantics on both databases: unique/debounce enqueue, retries, dead letters, supersession, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs import enqueue
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.queue import enqueue_debounced
from patronage.kit.jobs.worker import Worker
from tests.kit.jobs.conftest import load_job, run_rows

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("runs")


def _enqueue(db: Database, task: str = "test.record", **kwargs: object) -> int:
    with db.unit_of_work() as session:
        job_id = enqueue(session, task, **kwargs)  # type: ignore[arg-type]
    assert job_id is not None
    return job_id


def _count_jobs(db: Database) -> int:
    with db.unit_of_work(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_unique_key_adds_nothing_while_a_job_waits(db: Database) -> None:
    clock.freeze(T0)
    first = _enqueue(db, payload={"key": "a"}, unique_key="k")
    again = _enqueue(db, payload={"key": "b"}, unique_key="k")
    assert again == first
    assert _count_jobs(db) == 1
    assert load_job(db, first).payload == {"key": "a"}  # without debounce the waiting job is untouched


def test_a_running_job_does_not_block_the_next_one(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    first = _enqueue(db, unique_key="k")
    (claimed,) = worker.claim()
    assert claimed.id == first
    second = _enqueue(db, unique_key="k")  # the running one may have read its inputs already
    assert second != first
    assert _count_jobs(db) == 2


def test_debounce_pushes_the_waiting_job_and_keeps_the_newest_payload(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    job_id = _enqueue(db, payload={"key": "v1"}, unique_key="k", debounce=timedelta(seconds=30))
    clock.advance(timedelta(seconds=20))
    assert _enqueue(db, payload={"key": "v2"}, unique_key="k", debounce=timedelta(seconds=30)) == job_id
    job = load_job(db, job_id)
    assert job.run_at == T0 + timedelta(seconds=50)
    assert job.payload == {"key": "v2"}
    clock.advance(timedelta(seconds=29))
    assert worker.run_once() == 0  # still inside the debounce window
    clock.advance(timedelta(seconds=1))
    assert worker.run_once() == 1
    assert [r["key"] for r in run_rows(db)] == ["v2"]  # the burst ran once, with the last payload


def test_enqueue_of_an_unknown_task_fails_loudly(db: Database) -> None:
    with pytest.raises(KeyError, match="unknown task"), db.unit_of_work() as session:
        enqueue(session, "no.such.task")


def test_failures_are_retried_with_backoff_then_dead_with_last_error(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    job_id = _enqueue(db, "test.fail")
    for attempt in (1, 2):
        assert worker.run_once() == 1
        job = load_job(db, job_id)
        assert (job.status, job.attempts) == (JobStatus.QUEUED, attempt)
        assert job.last_error == f"ValueError: boom on attempt {attempt}"
        assert job.run_at > clock.utcnow()  # backing off
        assert worker.run_once() == 0  # not due yet
        clock.advance(timedelta(hours=1))
    assert worker.run_once() == 1
    job = load_job(db, job_id)
    assert (job.status, job.attempts, job.max_attempts) == (JobStatus.DEAD, 3, 3)
    assert job.last_error == "ValueError: boom on attempt 3"
    assert job.finished_at == clock.utcnow()
    clock.advance(timedelta(days=1))
    assert worker.run_once() == 0  # dead letters stay put
    assert run_rows(db) == []  # every failed attempt's writes were rolled back


def test_recorded_failure_keeps_the_handlers_writes(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    job_id = _enqueue(db, "test.recorded_failure", payload={"key": "r"})
    worker.run_once()
    clock.advance(timedelta(hours=1))
    worker.run_once()
    job = load_job(db, job_id)
    assert (job.status, job.attempts) == (JobStatus.DEAD, 2)
    assert job.last_error == "patronage.kit.jobs.registry.RecordedFailure: recorded failure on attempt 2"
    assert [r["attempt"] for r in run_rows(db)] == [1, 2]


def test_a_failed_job_is_superseded_by_a_newer_waiting_twin(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    old = _enqueue(db, "test.fail", unique_key="same")
    (claimed,) = worker.claim()
    new = _enqueue(db, "test.fail", unique_key="same")
    worker.execute(claimed)  # fails; requeueing would collide with the waiting twin
    assert load_job(db, old).status == JobStatus.SUPERSEDED
    assert load_job(db, old).finished_at is not None
    assert load_job(db, new).status == JobStatus.QUEUED


def test_expired_lease_is_reclaimed_and_buried_after_the_last_attempt(
    db: Database, worker: Worker
) -> None:
    clock.freeze(T0)
    lost = _enqueue(db, "test.fail")
    with db.unit_of_work() as session:  # as if two workers already lost it mid-job
        session.get_one(Job, lost).max_attempts = 2
    (claimed,) = worker.claim()
    clock.advance(timedelta(seconds=worker.settings.job_lease_seconds + 1))
    (reclaimed,) = Worker(worker.db, worker.settings, name="second").claim()
    assert (reclaimed.id, reclaimed.attempts, reclaimed.locked_by) == (lost, 2, "second")
    # The first worker comes back late: its lease is gone, so its outcome is discarded.
    assert worker.execute(claimed) is False
    assert load_job(db, lost).locked_by == "second"

    clock.advance(timedelta(seconds=worker.settings.job_lease_seconds + 1))
    runnable = _enqueue(db)
    # Burying the lost job must not end the batch: the runnable job behind it still runs now.
    assert worker.run_once() == 1
    buried = load_job(db, lost)
    assert buried.status == JobStatus.DEAD
    assert buried.last_error is not None and "lease expired on attempt 2" in buried.last_error
    assert load_job(db, runnable).status == JobStatus.SUCCEEDED


def test_claim_orders_by_priority_then_due_time(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    later = _enqueue(db, payload={"key": "later"}, run_at=T0 - timedelta(seconds=1))
    earlier = _enqueue(db, payload={"key": "earlier"}, run_at=T0 - timedelta(seconds=10))
    future = _enqueue(db, payload={"key": "future"}, run_at=T0 + timedelta(seconds=10))
    assert [j.id for j in worker.claim(limit=5)] == [earlier, later]
    assert load_job(db, future).status == JobStatus.QUEUED


def test_expired_leases_and_waiting_jobs_share_one_claim_order_and_limit(db: Database, worker: Worker) -> None:
    """Waiting jobs and lost ones (running, lease expired) are found along two partial indexes; one
    claim still takes them in a single priority, due-time order and never more than asked."""
    clock.freeze(T0)
    lost = _enqueue(db, run_at=T0 - timedelta(seconds=30))
    with db.unit_of_work() as session:
        session.get_one(Job, lost).priority = 50
    assert [j.id for j in Worker(db, worker.settings, name="gone").claim()] == [lost]
    clock.advance(timedelta(seconds=worker.settings.job_lease_seconds + 1))
    urgent, routine, slow = (_enqueue(db) for _ in range(3))
    with db.unit_of_work() as session:
        session.get_one(Job, urgent).priority, session.get_one(Job, slow).priority = 10, 200
    claimed = worker.claim(limit=3)
    assert [j.id for j in claimed] == [urgent, lost, routine]
    assert {j.locked_by for j in claimed} == {"test-worker"}
    assert load_job(db, slow).status == JobStatus.QUEUED
    assert [j.id for j in worker.claim(limit=3)] == [slow]


def test_a_stopping_worker_takes_no_further_job(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    job_ids = [_enqueue(db) for _ in range(3)]
    worker.stop()  # what SIGTERM does in `patronage worker`
    assert worker.run_once() == 0
    assert {load_job(db, j).status for j in job_ids} == {JobStatus.QUEUED}


def test_unique_enqueue_survives_prepared_statements(db: Database) -> None:
    """psycopg prepares a statement after 5 runs and PostgreSQL then plans it generically: the ON CONFLICT
    target must still match the partial unique index (it did not while its predicate was a parameter)."""
    with db.unit_of_work() as session:
        ids = [enqueue(session, "test.record", unique_key=f"k{n % 20}") for n in range(40)]
    assert ids[:20] == ids[20:]
    assert _count_jobs(db) == 20


def test_bulk_debounced_enqueue_is_a_debounced_enqueue_per_key(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    _enqueue(db, payload={"key": "old"}, unique_key="a", debounce=timedelta(seconds=30))
    running = _enqueue(db, payload={"key": "running"}, unique_key="b")
    assert [j.id for j in worker.claim(limit=5)] == [running]  # "a" is not due yet
    clock.advance(timedelta(seconds=10))
    with db.unit_of_work() as session:
        enqueue_debounced(session, "test.record", {"b": {"key": "new-b"}, "a": {"key": "new-a"},
                                                   "c": {"key": "new-c"}}, workspace_id=None,
                          debounce=timedelta(seconds=30))
    with db.unit_of_work(read_only=True) as session:
        rows = session.execute(select(Job.unique_key, Job.status, Job.payload, Job.run_at).order_by(Job.id))
        jobs = [tuple(r) for r in rows]
    due = T0 + timedelta(seconds=40)
    assert jobs == [
        ("a", JobStatus.QUEUED, {"key": "new-a"}, due),  # the waiting one: pushed back, newest payload
        ("b", JobStatus.RUNNING, {"key": "running"}, T0),  # a running one does not count as waiting...
        ("b", JobStatus.QUEUED, {"key": "new-b"}, due),  # ...so a new one waits behind it
        ("c", JobStatus.QUEUED, {"key": "new-c"}, due),
    ]
