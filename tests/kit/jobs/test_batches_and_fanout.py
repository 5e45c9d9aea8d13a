"""Batched claiming, handing back unstarted jobs, and event subscribers asked at record time (``wants``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs import enqueue, record_event
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.jobs.registry import REGISTRY, JobContext, on_event
from patronage.kit.jobs.worker import CLAIM_BATCH, Worker
from patronage.workspaces import service as ws_service
from patronage.workspaces.schemas import WorkspaceCreate
from tests.kit.jobs.conftest import load_job, run_rows
from tests.kit.jobs.sample_tasks import EXECUTIONS

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("runs")
WANTED: set[str] = set()  # event types the conditional test handler wants


def _plain(session: Session, ctx: JobContext) -> None:
    EXECUTIONS.append(ctx.job_id)


def _conditional(session: Session, ctx: JobContext) -> None:
    EXECUTIONS.append(ctx.job_id)


def _wants(session: Session, workspace_id: int, event_type: str) -> bool:
    return event_type in WANTED


@pytest.fixture
def subscribers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``test.thing`` has one plain subscriber and one asked at record time; nothing else listens."""
    monkeypatch.setattr(REGISTRY, "handlers", {})
    monkeypatch.setattr(REGISTRY, "conditional", {})
    on_event("test.thing", name="test.plain_subscriber")(_plain)
    on_event("*", name="test.conditional_subscriber", wants=_wants)(_conditional)
    WANTED.clear()
    yield
    WANTED.clear()


@pytest.fixture
def workspace_id(db: Database) -> int:
    with db.unit_of_work() as session:
        return ws_service.create_workspace(session, WorkspaceCreate(name="Jobs", slug="jobs")).id


def _tasks(db: Database) -> list[tuple[str, int | None]]:
    with db.unit_of_work(read_only=True) as session:
        rows = session.execute(select(Job.task, Job.payload).order_by(Job.id))
        return [(task, (payload or {}).get("event_id")) for task, payload in rows]


def test_a_conditional_subscriber_gets_only_the_events_it_wants(
    db: Database, subscribers: None, workspace_id: int
) -> None:
    with db.unit_of_work() as session:
        skipped = record_event(session, workspace_id, "test.thing", {"n": 1})
        WANTED.add("test.thing")
        wanted = record_event(session, workspace_id, "test.thing", {"n": 2})
        other = record_event(session, workspace_id, "test.other", {"n": 3})
    assert _tasks(db) == [
        ("test.plain_subscriber", skipped.id),
        ("test.plain_subscriber", wanted.id), ("test.conditional_subscriber", wanted.id),
    ]
    assert other.id is not None  # recorded, with no subscriber at all: no job
    assert REGISTRY.handler_tasks("test.thing") == ["test.plain_subscriber"]  # conditional ones not listed


def test_bulk_recording_asks_conditional_subscribers_too(db: Database, subscribers: None, workspace_id: int) -> None:
    WANTED.add("test.other")
    with db.unit_of_work() as session:
        record_events_bulk(session, workspace_id, [("test.thing", {"n": 1}), ("test.other", {"n": 2}),
                                                   ("test.other", {"n": 3})])
    tasks = [task for task, _ in _tasks(db)]
    assert sorted(tasks) == ["test.conditional_subscriber", "test.conditional_subscriber", "test.plain_subscriber"]


def test_event_jobs_carry_the_event_and_run(
    db: Database, subscribers: None, workspace_id: int, worker: Worker
) -> None:
    clock.freeze(T0)
    WANTED.add("test.thing")
    with db.unit_of_work() as session:
        event = record_event(session, workspace_id, "test.thing", {"n": 7})
    with db.unit_of_work(read_only=True) as session:
        jobs = list(session.scalars(select(Job).order_by(Job.id)))
    assert {j.workspace_id for j in jobs} == {workspace_id}
    assert all(j.payload == {"event_id": event.id, "event_uid": event.uid, "type": "test.thing",
                             "payload": {"n": 7}} for j in jobs)
    assert worker.run_once() == 2
    assert sorted(EXECUTIONS) == sorted(j.id for j in jobs)


def _enqueue_many(db: Database, n: int, task: str = "test.record") -> list[int]:
    with db.unit_of_work() as session:
        ids = [enqueue(session, task, {"key": f"k{i}"}) for i in range(n)]
    return [i for i in ids if i is not None]


def test_a_batch_is_claimed_at_once_and_each_job_commits_on_its_own(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    good = _enqueue_many(db, 3)
    bad = _enqueue_many(db, 1, "test.fail")
    more = _enqueue_many(db, 2)
    assert worker.run_once() == 6
    # The failing job sat in the middle of the batch: its rollback took nothing of the others with it.
    assert sorted(r["job_id"] for r in run_rows(db)) == sorted(good + more)
    assert {load_job(db, j).status for j in good + more} == {JobStatus.SUCCEEDED}
    failed = load_job(db, bad[0])
    assert failed.status == JobStatus.QUEUED and failed.attempts == 1 and "boom" in (failed.last_error or "")


def test_claiming_takes_at_most_a_batch(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    _enqueue_many(db, CLAIM_BATCH + 3)
    claimed = worker.claim(CLAIM_BATCH)
    assert len(claimed) == CLAIM_BATCH
    assert {load_job(db, j.id).status for j in claimed} == {JobStatus.RUNNING}


def test_a_stopping_worker_hands_back_the_rest_of_its_batch(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    ids = _enqueue_many(db, 4)
    original = worker.execute

    def execute_then_stop(job: Job) -> bool:
        worker.stop()  # SIGTERM arrives while the first job of the batch runs
        return original(job)

    worker.execute = execute_then_stop  # type: ignore[method-assign]
    assert worker.run_once() == 1
    statuses = [load_job(db, j) for j in ids]
    assert statuses[0].status == JobStatus.SUCCEEDED
    # The rest wait in the queue again at once (not after a lease), their attempt not spent.
    assert [(j.status, j.attempts, j.locked_by) for j in statuses[1:]] == [(JobStatus.QUEUED, 0, None)] * 3


def test_a_job_whose_lease_ran_out_in_the_batch_is_not_started(db: Database, worker: Worker) -> None:
    clock.freeze(T0)
    ids = _enqueue_many(db, 2)
    original = worker.execute

    def slow_first(job: Job) -> bool:
        result = original(job)
        clock.freeze(T0.replace(hour=13))  # the first job took longer than the second one's lease
        return result

    worker.execute = slow_first  # type: ignore[method-assign]
    assert worker.run_once(limit=2) == 2
    # Its lease had run out before its turn came: not started then (another worker could have been
    # running it), but claimed again, as a new attempt, and run.
    assert [(r["job_id"], r["attempt"]) for r in run_rows(db)] == [(ids[0], 1), (ids[1], 2)]
    assert load_job(db, ids[1]).status == JobStatus.SUCCEEDED
