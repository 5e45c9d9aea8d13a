"""Group commit: the writes of many concurrent requests in one transaction and one commit.

Each ``POST /orders`` on its own pays a transaction's fixed costs (BEGIN, the commit's round trip and,
on PostgreSQL, a WAL flush; on SQLite one turn of the single write lock) and runs its statements one
order at a time. Under load the requests waiting are many: a ``GroupCommitter`` (one per application
and process, its threads started lazily) takes everything waiting, up to ``MAX_BATCH`` items, writes
them on one session with its ``writer`` (set-based for orders: ``orders_batch.write_batch``), commits
once, and only then answers each waiter. With ``threads`` > 1, a batch forms and is written while the
previous one is still on its way to the database (idle threads take a lone item at once, so a quiet
server adds no wait); on SQLite they queue for the one write lock like any writer.

What a waiter gets is exactly what its work would have returned alone:

- Work runs in submission order, so two items touching the same order or the same new customer see
  each other's writes as if they had arrived one after the other.
- If an item raises, the batch is rolled back; the items before it are written again as a batch, the
  failing one alone in its own transaction (it gets its own error), the items after it as a batch.
  If the commit itself fails, every item runs alone. So one bad item never sinks the others.
- A waiter is answered only after its transaction committed. A crash before that loses nothing the
  client was told about; it resends (orders are idempotent by external id).

Work functions must be plain database work on the session they are given (no commit, no effects
outside the database), and must finish what the answer needs (load what the response shows) before
returning: the answer is built before the commit.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from patronage.kit.db import Database

log = logging.getLogger("patronage.group_commit")

T = TypeVar("T")
Work = Callable[[Session], Any]
# Writes a batch's items on one session, returning their results in order; raises ItemFailed(index) when
# an item's own work failed. The default runs each item in turn; orders_batch.write_batch is set-based.
Writer = Callable[[Session, list[Work]], list[Any]]

MAX_BATCH = 64
IDLE_SECONDS = 5.0  # a committer with nothing to do lets its thread end; the next item starts another


@dataclass
class _Item:
    work: Work
    future: Future[Any]


class ItemFailed(Exception):
    """Work item ``index`` of a batch raised (``__cause__``); the batch was rolled back."""

    def __init__(self, index: int) -> None:
        super().__init__(f"item {index} of the batch failed")
        self.index = index


def in_turn(session: Session, items: list[Work]) -> list[Any]:
    """The default writer: each item's work in turn."""
    results = []
    for index, item in enumerate(items):
        try:
            results.append(item(session))
        except Exception as exc:
            raise ItemFailed(index) from exc
    return results


class GroupCommitter:
    """One process's committer for one database. ``submit`` is thread-safe and never blocks."""

    def __init__(
        self, db: Database, writer: Writer = in_turn, *, threads: int = 1, max_batch: int = MAX_BATCH,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.db = db
        self.writer = writer
        self.threads = threads
        self.max_batch = max_batch
        self.idle_seconds = idle_seconds
        self.pid = os.getpid()
        self.transactions = 0  # committed by this committer (observability and tests)
        self.items = 0  # work items those transactions committed
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._stopping = False

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue ``work``; the future holds its result once committed, or the exception it raised."""
        future: Future[T] = Future()
        with self._cond:
            self._queue.append(_Item(work, future))
            self._stopping = False
            if self._idle == 0 and len(self._threads) < self.threads:
                thread = threading.Thread(target=self._loop, name="patronage-group-commit", daemon=True)
                self._threads.add(thread)
                thread.start()
            else:
                self._cond.notify()
        return future

    @property
    def waiting(self) -> int:
        """Items queued and not yet taken into a batch."""
        with self._cond:
            return len(self._queue)

    @property
    def running(self) -> bool:
        with self._cond:
            return bool(self._threads)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then end the threads (the application's shutdown)."""
        with self._cond:
            threads = list(self._threads)
            self._stopping = True
            self._cond.notify_all()
        for thread in threads:
            thread.join(timeout)

    # ---- the committer threads -------------------------------------------------------------------
    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                if not self._queue and not self._stopping:
                    self._idle += 1
                    self._cond.wait(self.idle_seconds)
                    self._idle -= 1
                if not self._queue:
                    self._threads.discard(me)  # stopping, or idle: a later submit starts a new thread
                    return
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            # A waiter that went away (client disconnected) before its turn is not written.
            live = [item for item in batch if item.future.set_running_or_notify_cancel()]
            if live:
                try:
                    self._write(live)
                except BaseException as exc:  # never leave a waiter hanging
                    log.exception("group commit failed")
                    for item in live:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise

    def _write(self, batch: list[_Item]) -> None:
        if len(batch) == 1:
            self._alone(batch[0])
            return
        try:
            with self.db.unit_of_work() as session:
                results = self.writer(session, [item.work for item in batch])
        except ItemFailed as failed:
            k = failed.index
            if k:
                self._write(batch[:k])
            self._alone(batch[k])
            if k + 1 < len(batch):
                self._write(batch[k + 1:])
            return
        except Exception:
            log.warning("group commit of %d items failed; writing each alone", len(batch), exc_info=True)
            for item in batch:
                self._alone(item)
            return
        self._count(len(batch))
        for item, result in zip(batch, results, strict=True):
            item.future.set_result(result)

    def _alone(self, item: _Item) -> None:
        """Today's path: the item in a transaction of its own."""
        try:
            with self.db.unit_of_work() as session:
                result = item.work(session)
        except Exception as exc:
            item.future.set_exception(exc)
            return
        self._count(1)
        item.future.set_result(result)

    def _count(self, items: int) -> None:
        with self._cond:
            self.transactions += 1
            self.items += items


_LOCK = threading.Lock()


def committer_for(state: Any, db: Database, writer: Writer = in_turn, *, threads: int = 1) -> GroupCommitter:
    """The committer of this process for an application's ``state`` (a forked worker gets its own)."""
    found: GroupCommitter | None = getattr(state, "group_committer", None)
    if found is not None and found.pid == os.getpid() and found.db is db:
        return found
    with _LOCK:
        found = getattr(state, "group_committer", None)
        if found is None or found.pid != os.getpid() or found.db is not db:
            found = GroupCommitter(db, writer, threads=threads)
            state.group_committer = found
        return found


def stop_committer(state: Any) -> None:
    """Shut down the application's committer, if this process started one."""
    found: GroupCommitter | None = getattr(state, "group_committer", None)
    if found is not None and found.pid == os.getpid():
        found.stop()
