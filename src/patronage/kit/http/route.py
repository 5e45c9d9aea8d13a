"""The request boundary: one session and one transaction per request, committed only on success.

Every route of the API uses ``UnitOfWorkRoute``. Handlers and services never commit. Writes that carry
an ``Idempotency-Key`` are recorded in the same transaction (see kit/idempotency.py).

Thread hops are the main cost of a small request, so the route keeps them to the minimum:

- a blocking (``def``) endpoint runs in a worker thread, but is presented to FastAPI as a coroutine, so
  the response model is validated on the event loop instead of in a second hop. Endpoints therefore
  return schemas or fully loaded rows (eager-load what the response shows), as they should anyway;
- ending the transaction (record the key, commit, close, then the ``after_request`` callbacks) takes one
  hop, on a capacity limiter of its own: a request holding a pooled connection can always hand it
  back, even while every default worker thread waits for a connection (no pool starvation). Ending a
  read-only transaction on SQLite is a local, immediate operation and runs inline.

A request holds its pooled connection (and, writing to SQLite, the database's one write lock) from its
first statement, often authentication in one hop, to its commit in another. Were requests to wait for
connections or for the lock on worker threads, a burst of them could hold every thread while the
holders wait for a thread to run their endpoints: a deadlock that ends only when the pool's or
SQLite's timeout fails them with a 500. So requests wait on the event loop, holding no thread, after
their body has arrived (a slow upload holds nothing), first come first served:

- ``_admission``: at most as many requests at once as the pool can serve without waiting (its size and
  overflow, less headroom for the job worker and short side connections);
- ``_write_gate`` (SQLite): writing requests one at a time, as SQLite runs them anyway. They use the
  write engine's pool, not the readers', and never take an admission slot from readers.

An endpoint marked ``commits_elsewhere`` hands its write to a committer of its own (the group commit of
``POST /orders``, events/group_commit.py) and waits for it on the event loop: its request gets a read-only
session (authentication), takes no write gate, and its end records nothing. A request carrying an
``Idempotency-Key`` always takes the ordinary path, so its record commits with its write.
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
import typing
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import anyio.to_thread
from anyio import CapacityLimiter, Lock, Semaphore, WouldBlock
from anyio.lowlevel import RunVar
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patronage.kit import idempotency
from patronage.kit.db import Database
from patronage.kit.errors import field_error
from patronage.kit.schemas import MAX_INT, MIN_INT

log = logging.getLogger("patronage.http")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RELEASE_THREADS = 64

_release_limiter: RunVar[CapacityLimiter] = RunVar("patronage_release_limiter")
_write_gates: RunVar[dict[int, Lock]] = RunVar("patronage_write_gates")
_admissions: RunVar[dict[int, Semaphore]] = RunVar("patronage_admissions")
# Connections a request's own session does not account for: the job worker's, a rate-limit counter's
# (PostgreSQL), the look-up of a concurrent request's idempotent response.
POOL_HEADROOM = 3

AfterRequest = Callable[[], None]
_COMMITS_ELSEWHERE = "__patronage_commits_elsewhere__"


def commits_elsewhere(when: Callable[[Any], bool]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an endpoint that, when ``when(settings)`` holds, writes through its own committer instead of the
    request's session; it reads ``request.state.commits_elsewhere`` to know which path it is on."""

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        setattr(endpoint, _COMMITS_ELSEWHERE, when)
        return endpoint

    return mark


@dataclass
class PendingKey:
    key: str
    fingerprint: str
    workspace_id: int | None = None  # set by authentication, which knows the tenant


class IdempotentReplay(Exception):
    def __init__(self, record: idempotency.IdempotencyRecord) -> None:
        self.record = record


def replay(record: idempotency.IdempotencyRecord) -> Response:
    return Response(
        content=record.body,
        status_code=record.status_code,
        media_type=record.media_type,
        headers={"Idempotent-Replayed": "true"},
    )


async def request_session(request: Request) -> Session:
    """Dependency: the request's session (a coroutine, so resolving it costs no thread hop)."""
    session: Session = request.state.session
    return session


def after_request(request: Request, callback: AfterRequest) -> None:
    """Run ``callback`` once this request's transaction has ended (committed or rolled back).

    For bookkeeping that must not join the request's transaction, such as stamping an API key's
    ``last_used_at`` in a short transaction of its own (on SQLite a second writer inside the request
    would wait for the request's own write lock). Errors are logged, never shown to the client.
    Outside a unit-of-work route the callback runs at once.
    """
    callbacks: list[AfterRequest] | None = getattr(request.state, "after_request", None)
    if callbacks is None:
        callback()
    else:
        callbacks.append(callback)


def _release_threads() -> CapacityLimiter:
    try:
        return _release_limiter.get()
    except LookupError:
        limiter = CapacityLimiter(RELEASE_THREADS)
        _release_limiter.set(limiter)
        return limiter


def _write_gate(db: Database) -> Lock:
    """The event loop's queue of writing requests for ``db`` (FIFO: anyio's Lock wakes waiters in order)."""
    try:
        gates = _write_gates.get()
    except LookupError:
        gates = {}
        _write_gates.set(gates)
    return gates.setdefault(id(db), Lock())


def _admission(db: Database, settings: Any) -> Semaphore:
    """The event loop's admission of requests to ``db``: as many at once as its pool serves without waiting."""
    try:
        admissions = _admissions.get()
    except LookupError:
        admissions = {}
        _admissions.set(admissions)
    found = admissions.get(id(db))
    if found is None:
        capacity = settings.db_pool_size + settings.db_max_overflow - POOL_HEADROOM - settings.worker_concurrency
        found = admissions[id(db)] = Semaphore(max(1, capacity))
    return found


async def _admit(admission: Semaphore) -> None:
    try:
        # A free place costs no trip through the event loop (anyio's acquire always yields once).
        # Waiters exist only while no place is free, so this never overtakes one: still FIFO.
        admission.acquire_nowait()
    except WouldBlock:
        await admission.acquire()


def _as_coroutine(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A blocking endpoint as a coroutine that runs it in a worker thread (FastAPI reads the signature
    and the annotations' module through ``__wrapped__``)."""
    if (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or not inspect.isfunction(endpoint)
    ):
        return endpoint

    @functools.wraps(endpoint)
    async def in_worker_thread(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return in_worker_thread


def _parameters(dependant: Dependant) -> Iterator[tuple[str, str, bool]]:
    """(location, name, is an integer) of every path and query parameter, dependencies' included."""
    for location, fields in (("path", dependant.path_params), ("query", dependant.query_params)):
        for field in fields:
            annotation = field.field_info.annotation
            if typing.get_origin(annotation) in (typing.Union, types.UnionType):
                kinds = {a for a in typing.get_args(annotation) if a is not type(None)}
            else:
                kinds = {annotation}
            yield location, field.alias or field.name, kinds == {int}
    for sub in dependant.dependencies:
        yield from _parameters(sub)


def check_parameters(request: Request, parameters: list[tuple[str, str, bool]]) -> None:
    """Path and query values the databases cannot store (NUL characters; integers beyond 64 bits) are a
    422 naming the parameter, before anything reaches the database."""
    for location, name, integer in parameters:
        values = [request.path_params.get(name)] if location == "path" else request.query_params.getlist(name)
        for value in values:
            if not isinstance(value, str):
                continue
            if "\x00" in value:
                raise field_error(f"{location}.{name}", "must not contain NUL (\\u0000) characters")
            if integer:
                try:
                    number = int(value)
                except ValueError:
                    continue  # not a number at all: FastAPI's own validation names it
                if not MIN_INT <= number <= MAX_INT:
                    raise field_error(f"{location}.{name}", f"must be between {MIN_INT} and {MAX_INT}")


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.commits_elsewhere: Callable[[Any], bool] | None = getattr(endpoint, _COMMITS_ELSEWHERE, None)
        super().__init__(path, _as_coroutine(endpoint), **kwargs)

    def _delegates(self, request: Request) -> bool:
        """This write goes to the endpoint's own committer (no Idempotency-Key, the feature switched on)."""
        when = self.commits_elsewhere
        return (
            when is not None
            and request.method not in SAFE_METHODS
            and "idempotency-key" not in request.headers
            and when(request.app.state.settings)
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()
        parameters = sorted(set(_parameters(self.dependant)))
        secrets = idempotency.shown_once_fields(self.response_model)

        async def handler(request: Request) -> Response:
            check_parameters(request, parameters)
            db: Database = request.app.state.db
            delegated = False
            if request.method not in SAFE_METHODS:
                await request.body()  # a slow upload must not hold a place in a queue
                delegated = self._delegates(request)
                if db.dialect == "sqlite" and not delegated:
                    async with _write_gate(db):
                        return await run(request, db, delegated)
            admission = _admission(db, request.app.state.settings)
            await _admit(admission)
            try:
                return await run(request, db, delegated)
            finally:
                admission.release()

        async def run(request: Request, db: Database, delegated: bool) -> Response:
            # A delegated write only reads here (authentication): its committer writes, on its own session.
            read_only = request.method in SAFE_METHODS or delegated
            session = (db.read_sessions if read_only else db.sessions)()
            callbacks: list[AfterRequest] = []
            state = request.state
            state.session = session
            state.after_request = callbacks
            state.commits_elsewhere = delegated
            pending: PendingKey | None = None
            raw_key = request.headers.get("idempotency-key")
            if raw_key is not None and not read_only:
                key = idempotency.check_key(raw_key)
                body = await request.body()
                pending = PendingKey(key, idempotency.request_fingerprint(request.method, request.url.path, body))
            state.idempotency = pending
            ending = _Ending(db, session, callbacks, pending, inline=read_only and db.local_reads, secrets=secrets)
            try:
                response = await inner(request)
            except IdempotentReplay as hit:
                replayed = replay(hit.record)  # before the rollback expires the record's attributes
                await ending.run("rollback")
                return replayed
            except IntegrityError:
                # Perhaps lost a race with a concurrent request carrying the same key: answer with its result.
                record = await ending.run("lost_race")
                if record is None:
                    raise
                return replay(record)
            except BaseException:
                await ending.run("rollback")
                raise
            record = await ending.run("commit", response)
            return response if record is None else replay(record)

        return handler


Outcome = Literal["commit", "rollback", "lost_race"]


@dataclass
class _Ending:
    """How a request's transaction ends: one worker-thread hop for the key, the commit, close, callbacks."""

    db: Database
    session: Session
    callbacks: list[AfterRequest]
    pending: PendingKey | None
    inline: bool  # a read-only transaction whose end is local and immediate (SQLite)
    secrets: frozenset[str] = frozenset()  # response fields never stored for a replay (SHOWN_ONCE)

    async def run(self, outcome: Outcome, response: Response | None = None) -> idempotency.IdempotencyRecord | None:
        if not self.session.in_transaction() and not self.callbacks and not self._remembers(outcome):
            self.session.close()  # never touched the database: nothing to release, no thread needed
            return None
        if self.inline and not self.callbacks:
            return self._end(outcome, response)
        return await anyio.to_thread.run_sync(self._end, outcome, response, limiter=_release_threads())

    def _remembers(self, outcome: Outcome) -> bool:
        return outcome == "commit" and self.pending is not None and self.pending.workspace_id is not None

    def _end(self, outcome: Outcome, response: Response | None) -> idempotency.IdempotencyRecord | None:
        session = self.session
        try:
            if outcome != "commit":
                session.rollback()
                return self._winner() if outcome == "lost_race" else None
            try:
                if self._remembers(outcome) and response is not None and response.status_code < 500:
                    assert self.pending is not None
                    _remember(session, self.pending, response, self.secrets)
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
                record = self._winner()
                if record is None:
                    raise
                return record
        finally:
            session.close()
            for callback in self.callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("after-request callback failed")

    def _winner(self) -> idempotency.IdempotencyRecord | None:
        """The committed response of a concurrent request with the same idempotency key, if any."""
        if self.pending is None or self.pending.workspace_id is None:
            return None
        return _find_committed(self.db, self.pending)


def _remember(session: Session, pending: PendingKey, response: Response, secrets: frozenset[str]) -> None:
    assert pending.workspace_id is not None
    idempotency.remember(
        session,
        pending.workspace_id,
        pending.key,
        pending.fingerprint,
        status_code=response.status_code,
        media_type=response.media_type or "application/json",
        body=idempotency.redact(bytes(response.body).decode(), secrets),
    )


def _find_committed(db: Database, pending: PendingKey) -> idempotency.IdempotencyRecord | None:
    assert pending.workspace_id is not None
    with db.unit_of_work(read_only=True) as session:
        return idempotency.find(session, pending.workspace_id, pending.key, pending.fingerprint)
