"""Where tasks, event handlers and periodic tasks are declared (at import time of each domain)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from patronage.config import Settings
from patronage.kit.db import Database, make_database
from patronage.kit.jobs.backoff import Backoff, exponential_backoff


@dataclass(frozen=True)
class JobContext:
    job_id: int
    task: str
    workspace_id: int | None
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    scheduled_for: datetime
    db: Database | None = None  # the worker's; set when the worker runs the job

    def database(self, session: Session) -> Database:
        """The database behind the job, for handlers that run their own short transactions (long reads must
        not sit in the job's session: on SQLite it holds the write lock). A handler called directly, as in
        tests, gets one built for the session's URL."""
        if self.db is not None:
            return self.db
        return _database_at(session.get_bind().engine.url.render_as_string(hide_password=False))


@lru_cache(maxsize=8)
def _database_at(url: str) -> Database:
    return make_database(Settings(database_url=url))


TaskFn = Callable[[Session, JobContext], None]
# Runs several claimed jobs of one task and one workspace in one transaction (see ``batch_of``).
BatchFn = Callable[[Session, Sequence[JobContext]], None]
# Asked when an event is recorded, in the recording transaction: (session, workspace id, event type) ->
# whether this event needs the handler at all. Must be cheap (a cached look-up): it runs on every write.
Wants = Callable[[Session, int, str], bool]
# Runs inside ``record_event``, in the recording transaction: (session, workspace id, event type, event
# payload). For reactions too small to be worth a job row of their own (see ``relay``).
Relay = Callable[[Session, int, str, dict[str, Any]], None]


class RecordedFailure(Exception):
    """Fail the job but keep what the handler wrote: its writes commit together with the retry or burial.

    A plain exception rolls the handler's transaction back. Raise this instead when the failure itself
    must be recorded (a webhook delivery's attempt log), so the record and the retry are one commit.
    """


@dataclass(frozen=True)
class TaskSpec:
    name: str
    fn: TaskFn
    max_attempts: int | None = None
    lease_seconds: int | None = None
    backoff: Backoff = exponential_backoff
    queue_priority: int = 100
    batch_fn: BatchFn | None = None


@dataclass(frozen=True)
class PeriodicSpec:
    name: str
    cron: str
    task: str
    per_workspace: bool


@dataclass
class Registry:
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    handlers: dict[str, list[str]] = field(default_factory=dict)  # event type ("*" = all) -> task names
    periodic: dict[str, PeriodicSpec] = field(default_factory=dict)
    # event type ("*" = all) -> (task name, predicate): handlers an event gets only when the predicate says so
    conditional: dict[str, list[tuple[str, Wants]]] = field(default_factory=dict)
    relays: dict[str, list[Relay]] = field(default_factory=dict)  # event type ("*" = all) -> relays

    def relays_of(self, event_type: str) -> list[Relay]:
        return [*self.relays.get(event_type, []), *self.relays.get("*", [])]

    def handler_tasks(self, event_type: str) -> list[str]:
        """The handlers every event of ``event_type`` gets (conditional ones are not listed)."""
        return [*self.handlers.get(event_type, []), *self.handlers.get("*", [])]

    def subscribers(self, session: Session, workspace_id: int, event_type: str) -> list[str]:
        """The handlers this event gets: every unconditional one, and the conditional ones that want it."""
        wanted = self.handler_tasks(event_type)
        for pattern in (event_type, "*"):
            for task_name, wants in self.conditional.get(pattern, ()):
                if wants(session, workspace_id, event_type):
                    wanted.append(task_name)
        return wanted


REGISTRY = Registry()


def task(
    name: str,
    *,
    max_attempts: int | None = None,
    lease_seconds: int | None = None,
    backoff: Backoff = exponential_backoff,
    priority: int = 100,
) -> Callable[[TaskFn], TaskFn]:
    """Declare a job handler. Handlers run in their own transaction, committed with the job's success."""

    def register(fn: TaskFn) -> TaskFn:
        if name in REGISTRY.tasks and REGISTRY.tasks[name].fn is not fn:
            raise ValueError(f"task {name!r} is already registered")
        batch_fn = REGISTRY.tasks[name].batch_fn if name in REGISTRY.tasks else None
        REGISTRY.tasks[name] = TaskSpec(name, fn, max_attempts, lease_seconds, backoff, priority, batch_fn)
        return fn

    return register


def batch_of(task_name: str) -> Callable[[BatchFn], BatchFn]:
    """Declare the set-based form of an already registered task.

    The worker may hand it several claimed jobs of ``task_name`` that share one workspace, in job order,
    inside one transaction, instead of running the single handler once per job. It must have exactly
    the database effects of the single handler run for each job in that order, and must not commit.
    If it raises, the worker rolls the whole batch back and runs each job on its own with the single
    handler, so a job that fails is retried, backed off and buried alone, as if never batched.
    """

    def register(fn: BatchFn) -> BatchFn:
        spec = REGISTRY.tasks.get(task_name)
        if spec is None:
            raise KeyError(f"batch_of({task_name!r}): register the task itself first")
        if spec.batch_fn is not None and spec.batch_fn is not fn:
            raise ValueError(f"task {task_name!r} already has a batch handler")
        REGISTRY.tasks[task_name] = replace(spec, batch_fn=fn)
        return fn

    return register


def on_event(
    event_type: str, *, name: str | None = None, wants: Wants | None = None, **options: Any
) -> Callable[[TaskFn], TaskFn]:
    """Run ``fn`` for each domain event of ``event_type`` ("*" for every event), through the queue.

    The event's id, type, uid and payload arrive in ``ctx.payload``. With ``wants``, an event gets the
    job only when ``wants(session, workspace_id, event_type)`` is true at record time (webhooks: only
    when some endpoint of the workspace subscribes to the type), so no job runs just to find nothing.
    """

    def register(fn: TaskFn) -> TaskFn:
        task_name = name or f"event:{fn.__module__}.{fn.__qualname__}"
        task(task_name, **options)(fn)
        if wants is None:
            subscribers = REGISTRY.handlers.setdefault(event_type, [])
            if task_name not in subscribers:
                subscribers.append(task_name)
        else:
            conditional = REGISTRY.conditional.setdefault(event_type, [])
            if all(existing != task_name for existing, _ in conditional):
                conditional.append((task_name, wants))
        return fn

    return register


def relay(event_type: str) -> Callable[[Relay], Relay]:
    """Run ``fn(session, workspace_id, event_type, payload)`` inside ``record_event`` for each event of
    ``event_type`` ("*" for every event), in the recording transaction, instead of through a job.

    Only for reactions that merely schedule other work, and only through ``enqueue_debounced_at_commit``
    (which takes its rows last, at commit, in one lock order): a relay must not lock anything, and reads
    at most once per transaction (``kit.memo.per_transaction``): it runs on every write. It saves the job
    row (insert, claim, success) a relaying handler would cost.
    """

    def register(fn: Relay) -> Relay:
        relays = REGISTRY.relays.setdefault(event_type, [])
        if fn not in relays:
            relays.append(fn)
        return fn

    return register


def periodic(
    name: str, cron: str, *, per_workspace: bool = True, **options: Any
) -> Callable[[TaskFn], TaskFn]:
    """Run ``fn`` on a cron schedule, in each workspace's time zone (or UTC when global)."""
    from patronage.kit.jobs.cron import validate_cron

    validate_cron(cron)

    def register(fn: TaskFn) -> TaskFn:
        task(name, **options)(fn)
        REGISTRY.periodic[name] = PeriodicSpec(name, cron, name, per_workspace)
        return fn

    return register
