"""The import loop: stream records, validate, apply chunk by chunk (``ChunkTransactions``), report errors.

Bounded memory: one chunk of records at a time. Re-running a file changes nothing: every kind is
idempotent by its external id. A chunk whose fast path fails on the database (a concurrent writer won
a race) is retried once, then applied item by item, so one bad row never sinks its chunk.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from patronage.customers.schemas import CustomerUpsert
from patronage.customers.service import upsert_customer
from patronage.events import returns as return_service
from patronage.events.behaviour_schemas import EventIn
from patronage.events.importer.events_bulk import ingest_events
from patronage.events.importer.orders_bulk import BulkContext, Outcome, ingest_orders
from patronage.events.importer.packed import Packed
from patronage.events.importer.prepare import PreparedOrder
from patronage.events.importer.readers import Format, Record, open_records
from patronage.events.importer.stream import (
    FailedRow,
    OrderFile,
    can_fork,
    describe,
    order_chunks,
    order_chunks_in_background,
)
from patronage.events.orders import workspace_currency
from patronage.events.schemas import OrderIn, ReturnIn
from patronage.kit import upsert
from patronage.kit.audit import audit
from patronage.kit.db import Database
from patronage.kit.errors import PatronageError
from patronage.kit.garbage import few_collections
from patronage.kit.http.problems import validation_problem

log = logging.getLogger("patronage.import")
Kind = Literal["customers", "orders", "returns", "events"]
SCHEMAS: dict[str, type[BaseModel]] = {
    "customers": CustomerUpsert, "orders": OrderIn, "returns": ReturnIn, "events": EventIn,
}
PARALLEL_MIN_BYTES = 8 << 20  # about 20,000 orders: below that a reader process costs more than it saves
R = TypeVar("R")
# Per chunk: records read, the valid items, their (line, external id), the rows that failed validation.
Chunk = tuple[int, list[Any], list[tuple[int, str | None]], list[FailedRow]]
DEFAULT_CHUNK = {"customers": 500, "orders": 10_000, "returns": 500, "events": 2000}


@dataclass
class ImportReport:
    kind: str
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ErrorReport:
    """The rows that failed: ``line, external_id, field, reason`` (CSV), written as they happen."""

    def __init__(self, path: Path | None) -> None:
        self._handle: IO[str] | None = path.open("w", newline="", encoding="utf-8") if path else None
        self._writer = csv.writer(self._handle) if self._handle else None
        if self._writer:
            self._writer.writerow(["line", "external_id", "field", "reason"])

    def add(self, line: int, key: str | None, field: str, reason: str) -> None:
        if self._writer:
            self._writer.writerow([line, key or "", field, reason])

    def close(self) -> None:
        if self._handle:
            self._handle.close()


def _statistics_due(chunk_number: int) -> bool:
    """After chunks 1, 2, 4, 8, ...: the tables' statistics keep up at a negligible cost."""
    return chunk_number & (chunk_number - 1) == 0


def refresh_statistics(db: Database) -> None:
    if db.dialect != "postgresql":
        return  # SQLite's planner needs no statistics here (see ``upsert.refresh_statistics``)
    from patronage.customers.models import Customer, CustomerIdentity
    from patronage.events.models import BehaviourEvent, Order, Return

    tables: list[Table] = [m.__table__ for m in (Order, Return, BehaviourEvent, Customer, CustomerIdentity)]  # type: ignore[misc]
    with db.unit_of_work() as session:
        upsert.refresh_statistics(session, tables)


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _validated(schema: type[BaseModel], record: Record) -> Any:
    """The record as its schema's input, or the error to report."""
    if record.data is None:
        return PatronageError(record.error or "unreadable")
    try:
        return schema.model_validate(record.data)
    except ValidationError as exc:
        return validation_problem([dict(e) for e in exc.errors()])
    except PatronageError as exc:  # the money rule (orders)
        return exc


def _single(session: Session, ctx: BulkContext, kind: str, item: Any) -> str:
    if kind == "customers":
        status, _ = upsert_customer(session, ctx.workspace_id, item, actor=ctx.actor)
        return status
    if kind == "returns":
        status, _ = return_service.record_return(session, ctx.workspace_id, item, actor=ctx.actor, source=ctx.source)
        return status
    if kind == "orders":
        from patronage.events.orders import upsert_order

        order = item.model() if isinstance(item, PreparedOrder | Packed) else item
        status, _ = upsert_order(session, ctx.workspace_id, order, actor=ctx.actor, source=ctx.source)
        return status
    from patronage.events.behaviour import record_behaviour_event

    status, _ = record_behaviour_event(session, ctx.workspace_id, item, actor=ctx.actor, source=ctx.source)
    return status


def _one_by_one(session: Session, ctx: BulkContext, kind: str, items: list[Any]) -> list[Outcome]:
    outcomes = []
    for item in items:
        try:
            with session.begin_nested():
                outcomes.append(Outcome(_single(session, ctx, kind, item)))
        except PatronageError as exc:
            outcomes.append(Outcome("error", exc))
    return outcomes


class ChunkTransactions:
    """Applies chunks, each in a savepoint of a transaction that is committed when ``due``.

    On PostgreSQL every chunk commits (long transactions would hold customers' row locks against the
    API). On SQLite a commit writes every page the transaction dirtied to the WAL, and a chunk of orders
    dirties most leaf pages of the indexes keyed by customer and of the customers' aggregates, wherever
    they are: committing every chunk rewrote the same pages over and over, and the import's cost per
    order grew with the database. So on SQLite chunks share a transaction until it has run
    ``SQLITE_COMMIT_SECONDS`` (the API's writers wait that long at most, well inside ``busy_timeout``) or
    holds ``SQLITE_COMMIT_ITEMS`` records. A crash loses at most that much progress, never a half chunk;
    re-running the file resumes (imports are idempotent).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        grouped = db.dialect == "sqlite"
        self.max_seconds = SQLITE_COMMIT_SECONDS if grouped else 0.0
        self.max_items = SQLITE_COMMIT_ITEMS if grouped else 0
        self._session: Session | None = None
        self._opened = 0.0
        self._items = 0

    def apply(self, work: Callable[[Session], R], items: int) -> R:
        """``work`` in a savepoint (an error rolls back only it), then a commit if one is due."""
        if self._session is None:
            self._session = self.db.sessions()
            self._opened, self._items = time.monotonic(), 0
        with self._session.begin_nested():
            result = work(self._session)
        self._items += items
        if self._items >= self.max_items or time.monotonic() - self._opened >= self.max_seconds:
            self.commit()
        return result

    def commit(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            try:
                session.commit()
            finally:
                session.close()

    def rollback(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.rollback()
            session.close()


SQLITE_COMMIT_SECONDS = 2.0
SQLITE_COMMIT_ITEMS = 200_000


def apply_chunk(transactions: ChunkTransactions, ctx: BulkContext, kind: str, items: list[Any]) -> list[Outcome]:
    """The chunk in one savepoint: the bulk path first, then (after a database error) item by item."""
    attempts = 2 if kind in ("orders", "events") else 0
    bulk = ingest_orders if kind == "orders" else ingest_events
    for _ in range(attempts):
        try:
            return transactions.apply(lambda session: bulk(session, ctx, items), len(items))
        except DBAPIError as exc:
            log.warning("bulk %s chunk failed (%s); retrying", kind, exc.orig)
            ctx.customers.clear()
    return transactions.apply(lambda session: _one_by_one(session, ctx, kind, items), len(items))


def _record_chunks(
    kind: str, path: Path, fmt: Format, size: int, progress: Callable[[int], None] | None
) -> Generator[Chunk, None, None]:
    """Customers, returns, events: (records read, valid items, their (line, key), failed rows) per chunk."""
    schema = SCHEMAS[kind]
    for chunk in _chunks(open_records(path, fmt, kind, progress), size):
        valid: list[Any] = []
        where: list[tuple[int, str | None]] = []
        failures: list[FailedRow] = []
        for record in chunk:
            item = _validated(schema, record)
            if isinstance(item, PatronageError):
                failures.append((record.line, record.key, *describe(item)))
            else:
                valid.append(item)
                where.append((record.line, record.key))
        yield len(chunk), valid, where, failures


def _order_chunks(
    source: OrderFile, progress: Callable[[int], None] | None, *, parallel: bool | None
) -> Generator[Chunk, None, None]:
    """Orders, packed (``stream.py``); read by a second process when ``parallel`` (None: for large files)
    and the process can fork safely."""
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1 and source.path.stat().st_size >= PARALLEL_MIN_BYTES
    for chunk in (order_chunks_in_background if parallel and can_fork() else order_chunks)(source):
        if progress is not None and chunk.consumed:
            progress(chunk.consumed)
        yield chunk.read, chunk.orders, [(p.line, p.key) for p in chunk.orders], chunk.failures


@few_collections
def run_import(
    db: Database,
    workspace_id: int,
    kind: Kind,
    path: Path,
    fmt: Format,
    *,
    errors_path: Path | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_chunk: Callable[[ImportReport], None] | None = None,
    actor: str = "import",
    source: str = "import",
    earn: bool = True,
    parallel: bool | None = None,
) -> ImportReport:
    """Import ``path`` into the workspace; returns the counts. Failed rows go to ``errors_path``.

    ``earn``: whether imported orders earn points (see docs/ingestion.md). ``parallel``: orders only,
    whether a second process reads and validates the file while this one writes (None: when it is large;
    never in a process running other threads, see ``stream.can_fork``).
    """
    report = ImportReport(kind)
    errors = ErrorReport(errors_path)
    started = time.perf_counter()
    size = chunk_size or DEFAULT_CHUNK[kind]
    with db.unit_of_work(read_only=True) as session:
        ctx = BulkContext(workspace_id, workspace_currency(session, workspace_id), actor, source, earn=earn)
    try:
        chunks = (
            _order_chunks(OrderFile(path, fmt, size, db.dialect, ctx.currency), progress, parallel=parallel)
            if kind == "orders" else _record_chunks(kind, path, fmt, size, progress)
        )
        with db.bulk_load() as bulk, contextlib.closing(chunks):  # closing: a reader process ends now
            _load(bulk, ctx, kind, report, errors, chunks=chunks, started=started, on_chunk=on_chunk)
    finally:
        errors.close()
    report.seconds = time.perf_counter() - started
    with db.unit_of_work() as session:
        audit(session, workspace_id=workspace_id, actor=actor, action=f"import.{kind}", subject_type="import",
              subject_id=path.name, data={k: v for k, v in report.as_dict().items() if k != "seconds"})
    return report


def _load(
    db: Database, ctx: BulkContext, kind: str, report: ImportReport, errors: ErrorReport, *,
    chunks: Iterator[Chunk],
    started: float, on_chunk: Callable[[ImportReport], None] | None,
) -> None:
    """Apply the chunks (see ``ChunkTransactions``); counts into ``report``, failed rows to ``errors``."""
    number = 0
    transactions = ChunkTransactions(db)
    try:
        for read, valid, where, failures in chunks:
            if not read:
                continue
            number += 1
            report.read += read
            if valid:
                for (line, key), outcome in zip(where, apply_chunk(transactions, ctx, kind, valid), strict=True):
                    if outcome.error is not None:
                        failures.append((line, key, *describe(outcome.error)))
                    else:
                        setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            report.failed += len(failures)
            for row in sorted(failures, key=lambda f: f[0]):
                errors.add(*row)
            if _statistics_due(number):
                refresh_statistics(db)
            report.seconds = time.perf_counter() - started
            if on_chunk:
                on_chunk(report)
        transactions.commit()
    except BaseException:
        transactions.rollback()
        raise
