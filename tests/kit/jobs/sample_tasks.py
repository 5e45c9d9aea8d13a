"""Tasks the job-queue tests enqueue. Importable by a worker subprocess (``import tests.kit.jobs.sample_tasks``).

Every execution that commits leaves a row in ``test_job_runs``, a table outside the application's
metadata (so migrations and the schema never see it); ``EXECUTIONS`` also counts executions that
were rolled back, in this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session

from patronage.kit.jobs import JobContext, RecordedFailure, batch_of, task

RUNS_METADATA = MetaData()
job_runs = Table(
    "test_job_runs",
    RUNS_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, nullable=False),
    Column("key", String(100)),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(200)),
)

EXECUTIONS: list[int] = []  # job ids, appended on every execution in this process
_lock = threading.Lock()


def _record(session: Session, ctx: JobContext) -> None:
    with _lock:
        EXECUTIONS.append(ctx.job_id)
    session.execute(
        insert(job_runs).values(
            job_id=ctx.job_id, key=ctx.payload.get("key"), attempt=ctx.attempt,
            worker=threading.current_thread().name,
        )
    )


@task("test.record")
def record(session: Session, ctx: JobContext) -> None:
    _record(session, ctx)


@task("test.fail", max_attempts=3)
def fail(session: Session, ctx: JobContext) -> None:
    _record(session, ctx)  # rolled back with the failure
    raise ValueError(f"boom on attempt {ctx.attempt}")


@task("test.recorded_failure", max_attempts=2)
def recorded_failure(session: Session, ctx: JobContext) -> None:
    _record(session, ctx)  # kept: it commits with the retry
    raise RecordedFailure(f"recorded failure on attempt {ctx.attempt}")


@task("test.sleepy", lease_seconds=30)
def sleepy(session: Session, ctx: JobContext) -> None:
    """Sleeps (touching no database) on its first attempt, so a test can kill the worker mid-job."""
    if ctx.attempt == 1:
        time.sleep(float(ctx.payload.get("sleep", 120)))
    _record(session, ctx)


# (task, workspace id, job ids) of every call of a batch handler, committed or not, in this process.
BATCH_CALLS: list[tuple[str, int | None, list[int]]] = []


def _record_batch(session: Session, contexts: Sequence[JobContext]) -> None:
    """The batch form of ``_record``: the same rows, one INSERT; fails as the single one would."""
    first = contexts[0]
    BATCH_CALLS.append((first.task, first.workspace_id, [ctx.job_id for ctx in contexts]))
    with _lock:
        EXECUTIONS.extend(ctx.job_id for ctx in contexts)
    session.execute(insert(job_runs), [
        {"job_id": ctx.job_id, "key": ctx.payload.get("key"), "attempt": ctx.attempt,
         "worker": threading.current_thread().name}
        for ctx in contexts
    ])
    for ctx in contexts:
        if ctx.payload.get("fail"):
            raise ValueError(f"job {ctx.job_id} fails")


def _record_or_fail(session: Session, ctx: JobContext) -> None:
    _record(session, ctx)
    if ctx.payload.get("fail"):
        raise ValueError(f"job {ctx.job_id} fails")


@task("test.batched", max_attempts=2)
def batched(session: Session, ctx: JobContext) -> None:
    _record_or_fail(session, ctx)


@task("test.batched_other")
def batched_other(session: Session, ctx: JobContext) -> None:
    _record_or_fail(session, ctx)


batch_of("test.batched")(_record_batch)
batch_of("test.batched_other")(_record_batch)
