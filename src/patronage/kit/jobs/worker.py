"""The worker: claims due jobs under a lease, runs them, retries or buries each failed one.

A job runs in its own transaction, or, when its task has a batch handler, together with the other
claimed jobs of its task and workspace in one transaction; a failed batch is rolled back and its jobs
run one by one. Delivery is at-least-once; a handler's database writes commit atomically with the
job's success, so for database-only work the effect is exactly-once. A worker that dies mid-job leaves a running job
whose lease expires; the next claim picks it up again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections import deque
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patronage.config import Settings
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.jobs.claiming import ClaimedJob, claim_due
from patronage.kit.jobs.models import JOBS_TABLE, Job, JobStatus
from patronage.kit.jobs.registry import REGISTRY, JobContext, RecordedFailure, TaskSpec
from patronage.kit.jobs.scheduler import fire_due_schedules, sync_schedules

log = logging.getLogger("patronage.worker")
SCHEDULE_SYNC_INTERVAL = timedelta(seconds=60)
# Jobs claimed per claiming statement. Claiming costs a transaction; a bigger claim spreads it and, above
# all, gives batch handlers bigger groups: jobs come in priority order, so under load most of a claim is
# one or two tasks (an order's points jobs, priority 20, first), and 64 of them make groups of dozens
# that each run as one transaction. Bigger would gain little and hold more jobs away from other workers.
CLAIM_BATCH = 64
# A claim held this long (slow jobs: network calls) hands its unstarted jobs back for other workers,
# their attempt not counted, rather than let them wait out their leases behind the slow ones.
CLAIM_HOLD_SECONDS = 10.0


# Success is one Core UPDATE, guarded like every write of a claimed job: only while we still hold it.
_MARK_SUCCEEDED = (
    update(JOBS_TABLE)
    .where(JOBS_TABLE.c.id.in_(bindparam("ids", expanding=True)), JOBS_TABLE.c.locked_by == bindparam("worker"),
           JOBS_TABLE.c.status == JobStatus.RUNNING)
    .values(status=JobStatus.SUCCEEDED, finished_at=bindparam("now"), lease_expires_at=None)
)
_STILL_OWNED = select(JOBS_TABLE.c.id).where(
    JOBS_TABLE.c.id.in_(bindparam("ids", expanding=True)), JOBS_TABLE.c.locked_by == bindparam("worker"),
    JOBS_TABLE.c.status == JobStatus.RUNNING,
)


class Worker:
    def __init__(self, db: Database, settings: Settings, *, name: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.postgres = db.dialect == "postgresql"
        self._stop = threading.Event()
        self._last_sync: datetime | None = None
        self._last_fire: datetime | None = None

    # ---- claiming ---------------------------------------------------------------------------------
    def claim(self, limit: int = 1) -> list[ClaimedJob]:
        """Lease up to ``limit`` due jobs to this worker, in one transaction (see ``claiming``)."""
        now = utcnow()
        leases = {name: spec.lease_seconds for name, spec in REGISTRY.tasks.items() if spec.lease_seconds}
        with self.db.unit_of_work() as session:
            claimed: list[ClaimedJob] = []
            # Burying a lost job claims nothing, so ask again until we hold ``limit`` or none is due:
            # otherwise one dead job would end the caller's batch while runnable jobs wait behind it.
            while len(claimed) < limit:
                jobs, buried = claim_due(
                    session, worker=self.name, limit=limit - len(claimed), now=now,
                    default_lease=self.settings.job_lease_seconds, task_leases=leases, postgres=self.postgres,
                )
                claimed += jobs
                if not buried:
                    break
            return claimed

    # ---- running ------------------------------------------------------------------------------------
    def _context(self, job: ClaimedJob) -> JobContext:
        return JobContext(
            job_id=job.id,
            task=job.task,
            workspace_id=job.workspace_id,
            payload=dict(job.payload or {}),
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            scheduled_for=job.run_at,
            db=self.db,
        )

    def execute(self, job: ClaimedJob) -> bool:
        """Run one claimed job; True when it succeeded."""
        spec = REGISTRY.tasks.get(job.task)
        if spec is None:
            self._fail(job, None, f"no handler registered for task {job.task!r}", final=True)
            return False
        ctx = self._context(job)
        session = self.db.sessions()
        try:
            spec.fn(session, ctx)
            if self._mark_succeeded(session, [job.id]) != 1:
                session.rollback()  # our lease was lost and someone else owns the job now
                return False
            session.commit()
            return True
        except RecordedFailure as exc:
            # The handler's writes (e.g. an attempt log) commit with the retry decision, atomically.
            log.warning("job failed", extra={"job_id": job.id, "task": job.task, "attempt": job.attempts})
            final = job.attempts >= job.max_attempts
            try:
                if self._apply_failure(session, job, spec, _error_text(exc), final=final):
                    session.commit()
                else:
                    session.rollback()
            except Exception:
                session.rollback()
                log.exception("could not record a job failure", extra={"job_id": job.id})
                self._fail(job, spec, _error_text(exc), final=final)
            return False
        except Exception as exc:  # any handler failure is retried; nothing is lost
            session.rollback()
            log.warning("job failed", extra={"job_id": job.id, "task": job.task, "attempt": job.attempts})
            self._fail(job, spec, _error_text(exc), final=job.attempts >= job.max_attempts)
            return False
        finally:
            session.close()

    def execute_batch(self, spec: TaskSpec, jobs: list[ClaimedJob]) -> list[ClaimedJob]:
        """Run claimed jobs of one task and workspace in one transaction through ``spec.batch_fn``.

        Returns the jobs still to run one by one: none on success; all of them when the batch handler
        failed (so the failing job is retried or buried alone); those we still hold when a lease was
        lost meanwhile (the lost ones belong to another worker now).
        """
        assert spec.batch_fn is not None
        ids = [job.id for job in jobs]
        session = self.db.sessions()
        try:
            spec.batch_fn(session, [self._context(job) for job in jobs])
            if self._mark_succeeded(session, ids) == len(ids):
                session.commit()
                return []
            session.rollback()
            owned = set(session.scalars(_STILL_OWNED, {"ids": ids, "worker": self.name}))
            session.rollback()
            log.warning("lease lost in a batch; running the rest one by one", extra={"task": spec.name})
            return [job for job in jobs if job.id in owned]
        except Exception:
            session.rollback()
            log.warning("batch failed; running its jobs one by one", exc_info=True,
                        extra={"task": spec.name, "jobs": len(jobs)})
            return jobs
        finally:
            session.close()

    def _mark_succeeded(self, session: Session, ids: list[int]) -> int:
        """Mark our jobs succeeded; returns how many we still held (fewer: a lease was lost)."""
        result = session.execute(_MARK_SUCCEEDED, {"ids": ids, "worker": self.name, "now": utcnow()})
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _fail(self, job: ClaimedJob, spec: TaskSpec | None, error: str, *, final: bool) -> None:
        with self.db.unit_of_work() as session:
            self._apply_failure(session, job, spec, error, final=final)

    def _apply_failure(
        self, session: Session, job: ClaimedJob, spec: TaskSpec | None, error: str, *, final: bool
    ) -> bool:
        """Requeue with backoff or bury the job, if we still hold it. False when the lease was lost."""
        now = utcnow()
        mine = (Job.id == job.id) & (Job.locked_by == self.name) & (Job.status == JobStatus.RUNNING)
        values: dict[str, object]
        if final or spec is None:
            values = {"status": JobStatus.DEAD, "finished_at": now, "last_error": error}
        else:
            values = {
                "status": JobStatus.QUEUED,
                "run_at": now + spec.backoff(job.attempts),
                "last_error": error,
                "locked_by": None,
                "lease_expires_at": None,
            }
        session.flush()  # the handler's own writes must fail here, not be mistaken for a key clash below
        try:
            with session.begin_nested():
                result = session.execute(update(Job).where(mine).values(**values))
        except IntegrityError:
            # A newer job with the same unique key is already waiting; it will do this work.
            result = session.execute(
                update(Job).where(mine).values(status=JobStatus.SUPERSEDED, finished_at=now, last_error=error)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ---- loops --------------------------------------------------------------------------------------
    def run_once(self, limit: int = 256) -> int:
        """Fire due schedules, then claim and run up to ``limit`` jobs. Returns how many ran."""
        self.tick()
        ran = 0
        while ran < limit and not self._stop.is_set():
            jobs = self.claim(min(CLAIM_BATCH, limit - ran))
            if not jobs:
                break
            ran += self._run_claimed(jobs)
        return ran

    def _run_claimed(self, jobs: list[ClaimedJob]) -> int:
        """Run a claim: batchable groups in one transaction each, every other job on its own."""
        held_since = time.monotonic()
        units = deque(_units(jobs))
        ran = 0
        started = False
        fallback: set[int] = set()  # jobs of a failed batch: they run now, or a slow failing batch never ends
        while units:
            unit = units.popleft()
            held_too_long = started and time.monotonic() - held_since > CLAIM_HOLD_SECONDS
            if self._stop.is_set() or (held_too_long and unit[0].id not in fallback):
                # On SIGTERM, stop after the current unit; hand the unstarted rest back.
                self.release([job for rest in (unit, *units) for job in rest])
                break
            started = True
            now = utcnow()
            # One whose lease ran out while it waited is not started: another worker may be running it.
            live = [job for job in unit if job.lease_expires_at is None or job.lease_expires_at > now]
            if len(live) > 1:
                spec = REGISTRY.tasks[live[0].task]
                singles = self.execute_batch(spec, live)
                ran += 0 if singles else len(live)  # jobs handed back run (and count) one by one
                units.extendleft([job] for job in reversed(singles))
                fallback.update(job.id for job in singles)
            elif live:
                self.execute(live[0])
                ran += 1
        return ran

    def release(self, jobs: list[ClaimedJob]) -> None:
        """Put claimed jobs that never started back in the queue, their attempt not counted."""
        with self.db.unit_of_work() as session:
            for job in jobs:
                mine = (Job.id == job.id) & (Job.locked_by == self.name) & (Job.status == JobStatus.RUNNING)
                try:
                    with session.begin_nested():
                        session.execute(update(Job).where(mine).values(
                            status=JobStatus.QUEUED, attempts=Job.attempts - 1, locked_by=None, lease_expires_at=None
                        ))
                except IntegrityError:
                    # A newer job with its unique key is waiting: that one will do the work.
                    session.execute(update(Job).where(mine).values(
                        status=JobStatus.SUPERSEDED, finished_at=utcnow(), last_error="released unstarted"
                    ))

    def drain(self, max_rounds: int = 100) -> int:
        """Run until no job is due (tests and the demo loader use this)."""
        total = 0
        for _ in range(max_rounds):
            ran = self.run_once()
            total += ran
            if ran == 0:
                break
        return total

    def tick(self) -> None:
        now = utcnow()
        # abs(): a clock set back (NTP, or a test freezing time in the past) must not stall the sync.
        if self._last_sync is None or abs(now - self._last_sync) > SCHEDULE_SYNC_INTERVAL:
            try:
                with self.db.unit_of_work() as session:
                    sync_schedules(session)
            except IntegrityError:
                # Another worker inserted the same schedule rows at the same moment; theirs will do.
                log.debug("schedules synced concurrently by another worker")
            self._last_sync = now
        # Cron firings are minute-grained: looking for due ones once a second is plenty, and spares a busy
        # or idle worker a transaction per round.
        second = now.replace(microsecond=0)
        if second != self._last_fire:
            with self.db.unit_of_work() as session:
                fire_due_schedules(session, postgres=self.postgres)
            self._last_fire = second

    def run_forever(self) -> None:
        log.info("worker started", extra={"worker": self.name})
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the database may be briefly unavailable; keep the worker alive
                log.exception("worker loop error")
                ran = 0
            if ran == 0:
                self._stop.wait(self.settings.worker_poll_interval)
        log.info("worker stopped", extra={"worker": self.name})

    def stop(self) -> None:
        self._stop.set()


def _units(jobs: list[ClaimedJob]) -> list[list[ClaimedJob]]:
    """Split a claim into what runs in one transaction: the jobs of a task with a batch handler, per
    workspace, in id order (the batch contract); every other job alone. Units keep claim order (the
    position of their first job), so higher-priority work still runs first."""
    units: list[list[ClaimedJob]] = []
    groups: dict[tuple[str, int | None], list[ClaimedJob]] = {}
    for job in jobs:
        spec = REGISTRY.tasks.get(job.task)
        if spec is None or spec.batch_fn is None:
            units.append([job])
            continue
        key = (job.task, job.workspace_id)
        if key not in groups:
            groups[key] = []
            units.append(groups[key])
        groups[key].append(job)
    for group in groups.values():
        group.sort(key=lambda job: job.id)
    return units


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:4000]


def start_worker_threads(db: Database, settings: Settings) -> list[tuple[Worker, threading.Thread]]:
    """In-process workers (``patronage serve``); SQLite gets exactly one, it has one writer anyway."""
    count = 1 if db.dialect == "sqlite" else max(1, settings.worker_concurrency)
    started = []
    for i in range(count):
        worker = Worker(db, settings, name=f"{socket.gethostname()}:{os.getpid()}:w{i}")
        thread = threading.Thread(target=worker.run_forever, name=f"patronage-worker-{i}", daemon=True)
        thread.start()
        started.append((worker, thread))
    return started
