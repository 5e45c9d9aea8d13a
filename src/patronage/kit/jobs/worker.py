"""The worker: claims due jobs under a lease, runs each in its own transaction, retries or buries it.

Delivery is at-least-once; a handler's database writes commit atomically with the job's success, so
for database-only work the effect is exactly-once. A worker that dies mid-job leaves a running job
whose lease expires; the next claim picks it up again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patronage.config import Settings
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job, JobStatus
from patronage.kit.jobs.registry import REGISTRY, JobContext, RecordedFailure, TaskSpec
from patronage.kit.jobs.scheduler import fire_due_schedules, sync_schedules

log = logging.getLogger("patronage.worker")
SCHEDULE_SYNC_INTERVAL = timedelta(seconds=60)
# Jobs claimed per claiming transaction. Claiming costs a transaction of its own; taking a few jobs at
# once spreads it. Each job still runs in its own transaction. Kept small: the last job of a batch
# waits for the ones before it (its lease runs meanwhile), and other workers cannot take it.
CLAIM_BATCH = 8


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
    def claim(self, limit: int = 1) -> list[Job]:
        now = utcnow()
        with self.db.unit_of_work() as session:
            due = or_(
                (Job.status == JobStatus.QUEUED) & (Job.run_at <= now),
                (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < now),
            )
            claimed: list[Job] = []
            # Burying a lost job claims nothing, so select again until we hold ``limit`` or none is due:
            # otherwise one dead job would end the caller's batch while runnable jobs wait behind it.
            while len(claimed) < limit:
                stmt = select(Job).where(due).order_by(Job.priority, Job.run_at, Job.id)
                stmt = stmt.limit(limit - len(claimed))
                if self.postgres:
                    stmt = stmt.with_for_update(skip_locked=True)
                rows = list(session.scalars(stmt))
                if not rows:
                    break
                for job in rows:
                    if job.status == JobStatus.RUNNING and job.attempts >= job.max_attempts:
                        job.status = JobStatus.DEAD
                        job.finished_at = now
                        job.last_error = (
                            f"lease expired on attempt {job.attempts} (worker {job.locked_by} lost)"
                        )
                        continue
                    spec = REGISTRY.tasks.get(job.task)
                    lease = (spec.lease_seconds if spec else None) or self.settings.job_lease_seconds
                    job.status = JobStatus.RUNNING
                    job.attempts += 1
                    job.locked_by = self.name
                    job.lease_expires_at = now + timedelta(seconds=lease)
                    claimed.append(job)
                session.flush()  # the rows handled above no longer match ``due``
            return claimed

    # ---- running ------------------------------------------------------------------------------------
    def execute(self, job: Job) -> bool:
        """Run one claimed job; True when it succeeded."""
        spec = REGISTRY.tasks.get(job.task)
        if spec is None:
            self._fail(job, None, f"no handler registered for task {job.task!r}", final=True)
            return False
        ctx = JobContext(
            job_id=job.id,
            task=job.task,
            workspace_id=job.workspace_id,
            payload=dict(job.payload or {}),
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            scheduled_for=job.run_at,
            db=self.db,
        )
        session = self.db.sessions()
        try:
            spec.fn(session, ctx)
            if not self._mark_succeeded(session, job):
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

    def _mark_succeeded(self, session: Session, job: Job) -> bool:
        result = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.locked_by == self.name, Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.SUCCEEDED, finished_at=utcnow(), lease_expires_at=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _fail(self, job: Job, spec: TaskSpec | None, error: str, *, final: bool) -> None:
        with self.db.unit_of_work() as session:
            self._apply_failure(session, job, spec, error, final=final)

    def _apply_failure(
        self, session: Session, job: Job, spec: TaskSpec | None, error: str, *, final: bool
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
    def run_once(self, limit: int = 50) -> int:
        """Fire due schedules, then claim and run up to ``limit`` jobs. Returns how many ran."""
        self.tick()
        ran = 0
        while ran < limit and not self._stop.is_set():
            jobs = self.claim(min(CLAIM_BATCH, limit - ran))
            if not jobs:
                break
            for i, job in enumerate(jobs):
                if self._stop.is_set():  # on SIGTERM, stop after the current job; hand the rest back
                    self.release(jobs[i:])
                    break
                if job.lease_expires_at is not None and job.lease_expires_at <= utcnow():
                    # Waited in the batch past its lease: another worker may be running it by now.
                    continue
                self.execute(job)
                ran += 1
        return ran

    def release(self, jobs: list[Job]) -> None:
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
