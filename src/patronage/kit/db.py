"""Engines and session factories. The only module that knows which database dialect is in use."""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from patronage.config import Settings


class WriteQueue:
    """SQLite's writers of one process, served first come, first served.

    SQLite's busy handler polls with growing sleeps (up to 100 ms), so in a burst of writers a newcomer
    regularly overtakes one that has been waiting and can starve it past ``busy_timeout``: the request
    fails with "database is locked" although the database was never stuck. Queueing the process's
    writers here hands the write lock over in arrival order, with no polling; ``busy_timeout`` remains
    the arbiter between processes (the CLI, a separate worker).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        if turn.acquire(timeout=timeout):
            return True
        with self._mutex:
            if turn in self._waiting:
                self._waiting.remove(turn)
                return False
        return True  # handed over just as the wait timed out: it is ours

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # hand over directly: the queue stays held
            else:
                self._held = False


_WRITE_QUEUES: dict[str, WriteQueue] = {}
_WRITE_QUEUES_LOCK = threading.Lock()
_HOLDS_QUEUE = "patronage.write_queue"


def _write_queue(database: str) -> WriteQueue:
    with _WRITE_QUEUES_LOCK:
        return _WRITE_QUEUES.setdefault(database, WriteQueue())


def _queue_writers(engine: Engine, queue: WriteQueue, timeout: float) -> None:
    """Take ``queue`` before a write transaction begins; give it back when the transaction ends."""

    def release(info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_QUEUE, False):
            queue.release()

    @event.listens_for(engine, "begin")
    def _take(conn: Any) -> None:
        if conn.info.get(_HOLDS_QUEUE):
            return
        if not queue.acquire(timeout):
            error = sqlite3.OperationalError("database is locked (still queued for the write lock)")
            raise OperationalError("BEGIN IMMEDIATE", None, error)
        conn.info[_HOLDS_QUEUE] = True

    # The transaction's end, however it comes: commit, rollback, a connection returned or invalidated.
    event.listen(engine, "commit", lambda conn: release(conn.info))
    event.listen(engine, "rollback", lambda conn: release(conn.info))
    event.listen(engine.pool, "checkin", lambda _dbapi, record: release(record.info))
    event.listen(engine.pool, "invalidate", lambda _dbapi, record, _exc: release(record.info))


# Pages of 8 KiB (SQLite's default is 4 KiB) for a database file this application creates: B-trees one level
# shallower and half the page look-ups for the wide rows and the large indexes of orders, lines and ledger
# entries (1M-order import: 5 % less CPU in the writer). A database that already has tables keeps its size:
# SQLite changes it only by a VACUUM, and never in WAL mode.
SQLITE_PAGE_SIZE = 8192


def _sqlite_engine(settings: Settings, *, immediate: bool, **overrides: Any) -> Engine:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if make_url(settings.database_url).database not in (None, "", ":memory:"):
        # A file: a queue pool sized like PostgreSQL's (in-memory databases keep their own pool).
        overrides = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow, **overrides}
    engine = create_engine(
        settings.database_url,
        connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
        **overrides,
    )
    pragmas = [
        f"PRAGMA page_size={SQLITE_PAGE_SIZE}",  # first: only a file with no table yet takes it
        "PRAGMA journal_mode=WAL",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}",
        f"PRAGMA synchronous={settings.sqlite_synchronous}",
        "PRAGMA temp_store=MEMORY",
    ]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so the BEGIN below is the one that runs.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    # Writers take the write lock up front (BEGIN IMMEDIATE), queued in arrival order (WriteQueue) and,
    # against other processes, on busy_timeout, instead of failing with SQLITE_BUSY when a read
    # transaction later tries to upgrade. Readers stay deferred and, under WAL, never block or wait.
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    database = make_url(settings.database_url).database
    on_disk = database not in (None, "", ":memory:") and not str(database).startswith("file:")
    queue = _write_queue(str(Path(str(database)).resolve())) if immediate and on_disk else None
    if queue is not None:
        _queue_writers(engine, queue, settings.sqlite_busy_timeout_ms / 1000)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        try:
            conn.exec_driver_sql(begin)
        except BaseException:
            if queue is not None and conn.info.pop(_HOLDS_QUEUE, False):
                queue.release()
            raise

    return engine


@dataclass
class Database:
    """The application database: a write path and a read path (the same one on PostgreSQL)."""

    engine: Engine
    read_engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def local_reads(self) -> bool:
        """Ending a read-only transaction is local and immediate (SQLite), not a network round trip."""
        return self.read_engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error (the job/CLI boundary)."""
        session = (self.read_sessions if read_only else self.sessions)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


    @contextmanager
    def bulk_load(self) -> Iterator[Database]:
        """This database for one bulk load (an import) in this thread.

        On SQLite its writes share one connection, tuned for the load (``BULK_SQLITE_PRAGMAS``) and given
        back as it was; each ``unit_of_work`` is still its own transaction, and durability is untouched
        (``synchronous`` stays as configured). PostgreSQL needs no tuning: the database itself is yielded.
        """
        if self.dialect != "sqlite":
            yield self
            return
        with self.engine.connect() as connection:
            raw: Any = connection.connection.dbapi_connection
            saved: dict[str, Any] = {}
            for name, value in BULK_SQLITE_PRAGMAS.items():
                saved[name] = raw.execute(f"PRAGMA {name}").fetchone()[0]
                raw.execute(f"PRAGMA {name}={value}")
            try:
                yield replace(self, sessions=_factory(connection))
            finally:
                for name, value in saved.items():
                    raw.execute(f"PRAGMA {name}={value}")


# A bulk load touches index pages all over tables of millions of rows: a 256 MiB page cache (instead of
# 2 MiB) keeps them in memory, and a checkpoint every ~200 MiB of WAL (instead of ~4 MiB) copies a page
# rewritten by many transactions once (1M-order import: 8.8 -> 6.4 s in commits). Both are per
# connection and reset when the load ends.
BULK_SQLITE_PRAGMAS: dict[str, int] = {"cache_size": -262_144, "wal_autocheckpoint": 50_000}


def _factory(bind: Engine | Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True)


# psycopg turns ``%(name)s`` placeholders into ``$n`` with a regex over the statement's text, caching the
# result only for statements of at most 50 parameters and 4 KiB. Ours above that are the multi-row INSERTs
# SQLAlchemy sends for an executemany (an order batch's jobs, events, lines; a job batch's ledger entries):
# re-parsed on every call, they cost 10-15 % of the HTTP process's CPU. They come in few shapes (one per
# row count), so they cache well; the cache keeps 128 entries, and these limits bound one at 128 KiB of
# text and 2,000 parts (bulk imports' 1,000-row pages stay uncached: one parse per 1,000 rows).
PSYCOPG_CACHED_STATEMENT_PARAMS = 2_000
PSYCOPG_CACHED_STATEMENT_BYTES = 128 << 10


def cache_large_statements() -> bool:
    """Raise psycopg's statement-conversion cache limits (see above); False if this psycopg has none."""
    try:
        from psycopg import _queries
    except ImportError:
        return False
    if not hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS") or not hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH"):
        return False
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, PSYCOPG_CACHED_STATEMENT_PARAMS)
    _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, PSYCOPG_CACHED_STATEMENT_BYTES)
    return True


def make_database(settings: Settings, **overrides: Any) -> Database:
    if settings.is_sqlite:
        engine = _sqlite_engine(settings, immediate=True, **overrides)
        read_engine = _sqlite_engine(settings, immediate=False, **overrides)
    else:
        cache_large_statements()
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=True,
            **overrides,
        )
        read_engine = engine
    return Database(engine, read_engine, _factory(engine), _factory(read_engine))


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
