"""Batch execution: claimed jobs of a task with a batch handler run per (task, workspace) in one
transaction, with the same effects as one by one; failures and lost leases fall back to single runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, update
from sqlalchemy.orm import Session

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs import JobContext, enqueue
from patronage.kit.jobs import worker as worker_module
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.registry import REGISTRY
from patronage.kit.jobs.worker import Worker
from patronage.workspaces import service as ws_service
from patronage.workspaces.schemas import WorkspaceCreate
from tests.kit.jobs import sample_tasks
from tests.kit.jobs.conftest import load_job, run_rows
from tests.kit.jobs.sample_tasks import EXECUTIONS

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("runs")


def _enqueue(db: Database, jobs: list[tuple[str, dict[str, Any], int | None]]) -> list[int]:
    with db.unit_of_work() as session:
        ids = [enqueue(session, task, payload, workspace_id=ws) for task, payload, ws in jobs]
    return [i for i in ids if i is not None]


def batch_calls() -> list[tuple[str, int | None, list[int]]]:
    return list(sample_tasks.BATCH_CALLS)


def _outcomes(db: Database, ids: list[int]) -> list[tuple[str, int]]:
    return [(job.status, job.attempts) for job in (load_job(db, i) for i in ids)]


@pytest.fixture
def workspaces(db: Database) -> tuple[int, int]:
    with db.unit_of_work() as session:
        a = ws_service.create_workspace(session, WorkspaceCreate(name="A", slug="batch-a")).id
        b = ws_service.create_workspace(session, WorkspaceCreate(name="B", slug="batch-b")).id
        session.execute(delete(Job))  # whatever creating them enqueued is not under test here
    return a, b


def test_a_group_runs_through_the_batch_handler_in_one_call(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    ids = _enqueue(db, [("test.batched", {"key": f"k{i}"}, None) for i in range(5)])
    assert worker.run_once() == 5
    assert batch_calls() == [("test.batched", None, ids)]
    assert [(r["job_id"], r["key"], r["attempt"]) for r in run_rows(db)] == [
        (job_id, f"k{i}", 1) for i, job_id in enumerate(ids)
    ]
    assert _outcomes(db, ids) == [(JobStatus.SUCCEEDED, 1)] * 5
    assert all(load_job(db, i).lease_expires_at is None and load_job(db, i).finished_at for i in ids)


def test_batched_and_single_runs_have_the_same_effects(
    db: Database, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.freeze(T0)
    batched_ids = _enqueue(db, [("test.batched", {"key": f"k{i}"}, None) for i in range(4)])
    worker.run_once()
    batched = [(r["key"], r["attempt"]) for r in run_rows(db)]
    spec = REGISTRY.tasks["test.batched"]
    monkeypatch.setitem(REGISTRY.tasks, "test.batched", replace(spec, batch_fn=None))
    single_ids = _enqueue(db, [("test.batched", {"key": f"k{i}"}, None) for i in range(4)])
    worker.run_once()
    assert [(r["key"], r["attempt"]) for r in run_rows(db)] == batched * 2
    assert len(batch_calls()) == 1  # the second round really ran one by one
    assert _outcomes(db, batched_ids) == _outcomes(db, single_ids) == [(JobStatus.SUCCEEDED, 1)] * 4


def test_a_failing_batch_falls_back_and_isolates_the_failing_job(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    ids = _enqueue(db, [("test.batched", {"key": f"k{i}", "fail": i == 2}, None) for i in range(4)])
    assert worker.run_once() == 4
    assert batch_calls() == [("test.batched", None, ids)]  # tried once as a batch, rolled back
    # Then one by one: the batch's rows are gone, each good job committed its own, the bad one none.
    assert sorted(r["job_id"] for r in run_rows(db)) == [ids[0], ids[1], ids[3]]
    assert sorted(EXECUTIONS) == sorted(ids + ids)
    outcomes = _outcomes(db, ids)
    assert outcomes[2] == (JobStatus.QUEUED, 1)  # retried later, alone, its attempt counted once
    assert "fails" in (load_job(db, ids[2]).last_error or "")
    assert [o for i, o in enumerate(outcomes) if i != 2] == [(JobStatus.SUCCEEDED, 1)] * 3

    clock.advance(timedelta(hours=1))  # its retry is due; it fails again on its last attempt
    assert worker.run_once() == 1
    assert _outcomes(db, ids)[2] == (JobStatus.DEAD, 2)
    assert len(batch_calls()) == 1  # a group of one runs the single handler


def test_groups_are_per_task_and_workspace_in_claim_order(
    db: Database, worker: Worker, workspaces: tuple[int, int]
) -> None:
    clock.freeze(T0)
    a, b = workspaces
    ids = _enqueue(db, [
        ("test.batched", {}, a), ("test.batched", {}, b), ("test.record", {}, a), ("test.batched", {}, a),
        ("test.batched_other", {}, a), ("test.batched", {}, b), ("test.batched_other", {}, a),
        ("test.batched_other", {}, b), ("test.record", {}, a),
    ])
    assert worker.run_once() == len(ids)
    assert batch_calls() == [
        ("test.batched", a, [ids[0], ids[3]]),
        ("test.batched", b, [ids[1], ids[5]]),
        ("test.batched_other", a, [ids[4], ids[6]]),
    ]  # the lone test.batched_other job of b, and the test.record jobs, ran on their own
    assert sorted(EXECUTIONS) == sorted(ids)
    assert {load_job(db, i).status for i in ids} == {JobStatus.SUCCEEDED}


def test_a_lease_lost_in_a_batch_throws_the_batch_away_and_runs_only_our_jobs(
    db: Database, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.freeze(T0)
    ids = _enqueue(db, [("test.batched", {"key": f"k{i}"}, None) for i in range(3)])
    spec = REGISTRY.tasks["test.batched"]
    assert spec.batch_fn is not None
    batch_fn = spec.batch_fn

    def steal_then_run(session: Session, contexts: Sequence[JobContext]) -> None:
        with db.unit_of_work() as other:  # another worker reclaimed job 1 while we were slow
            other.execute(update(Job).where(Job.id == ids[1]).values(locked_by="thief", attempts=2))
        batch_fn(session, contexts)

    monkeypatch.setitem(REGISTRY.tasks, "test.batched", replace(spec, batch_fn=steal_then_run))
    assert worker.run_once() == 2
    # The batch rolled back; the jobs still ours ran one by one; the stolen one is the thief's.
    assert sorted(r["job_id"] for r in run_rows(db)) == [ids[0], ids[2]]
    assert _outcomes(db, [ids[0], ids[2]]) == [(JobStatus.SUCCEEDED, 1)] * 2
    stolen = load_job(db, ids[1])
    assert (stolen.status, stolen.locked_by, stolen.finished_at) == (JobStatus.RUNNING, "thief", None)


def test_a_stopping_worker_finishes_its_batch_and_hands_back_the_rest(
    db: Database, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.freeze(T0)
    group = _enqueue(db, [("test.batched", {}, None) for _ in range(3)])
    rest = _enqueue(db, [("test.record", {}, None), ("test.batched_other", {}, None), ("test.record", {}, None)])
    original = worker.execute_batch

    def stop_during_batch(spec: Any, jobs: list[Job]) -> list[Job]:
        worker.stop()  # SIGTERM arrives while the batch runs
        return original(spec, jobs)

    monkeypatch.setattr(worker, "execute_batch", stop_during_batch)
    assert worker.run_once() == 3
    assert _outcomes(db, group) == [(JobStatus.SUCCEEDED, 1)] * 3
    assert [(j.status, j.attempts, j.locked_by) for j in map(lambda i: load_job(db, i), rest)] == [
        (JobStatus.QUEUED, 0, None)
    ] * 3


def test_a_claim_held_too_long_hands_back_its_unstarted_jobs(
    db: Database, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.freeze(T0)
    ids = _enqueue(db, [("test.record", {}, None) for _ in range(3)])
    monkeypatch.setattr(worker_module, "CLAIM_HOLD_SECONDS", -1.0)  # every job is "slow"
    claimed = worker.claim(3)
    assert worker._run_claimed(claimed) == 1  # the first ran; the rest went back, their attempt not spent
    assert _outcomes(db, ids) == [(JobStatus.SUCCEEDED, 1), (JobStatus.QUEUED, 0), (JobStatus.QUEUED, 0)]
    assert worker.run_once() == 2  # and are claimed again right away, one per claim
    assert {load_job(db, i).status for i in ids} == {JobStatus.SUCCEEDED}


def test_claiming_is_one_statement_and_leases_by_task(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    plain = _enqueue(db, [("test.record", {}, None) for _ in range(5)])
    own_lease = _enqueue(db, [("test.sleepy", {}, None)])  # declares a 30 s lease
    statements: list[str] = []

    def log(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", log)
    try:
        claimed = worker.claim(10)
    finally:
        event.remove(db.engine, "before_cursor_execute", log)
    assert [s.split()[0] for s in statements if not s.startswith(("BEGIN", "PRAGMA"))] == ["WITH"]
    assert [j.id for j in claimed] == plain + own_lease
    lease = timedelta(seconds=worker.settings.job_lease_seconds)
    assert {load_job(db, i).lease_expires_at for i in plain} == {T0 + lease}
    assert load_job(db, own_lease[0]).lease_expires_at == T0 + timedelta(seconds=30)
    assert {(j.status, j.attempts, j.locked_by) for j in claimed} == {(JobStatus.RUNNING, 1, "test-worker")}


def test_a_failed_batch_runs_its_jobs_alone_even_past_the_hold_time(
    db: Database, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handing them back would refund the attempt, and a slow failing batch would then never end."""
    clock.freeze(T0)
    ids = _enqueue(db, [("test.batched", {"fail": i == 0}, None) for i in range(3)])
    later = _enqueue(db, [("test.record", {}, None)])
    monkeypatch.setattr(worker_module, "CLAIM_HOLD_SECONDS", -1.0)
    claimed = worker.claim(10)
    assert worker._run_claimed(claimed) == 3
    assert _outcomes(db, ids) == [(JobStatus.QUEUED, 1), (JobStatus.SUCCEEDED, 1), (JobStatus.SUCCEEDED, 1)]
    assert _outcomes(db, later) == [(JobStatus.QUEUED, 0)]  # not started: handed back
