"""Orders read, validated and packed chunk by chunk, in this process or in a second one.

Parsing and validating an order costs about as much CPU as writing it, and neither waits for the other:
for a large file the reading side runs in a child process (``order_chunks_in_background``) that sends
each chunk, packed (``packed.py``: tuples of plain values, sent as one ``marshal`` blob), through a pipe while this
process writes the previous one. The pipe holds one chunk: memory stays bounded, and the reader waits
when the database is the slower side. Small files are read in-process (``order_chunks``): starting a
process would cost more than it saves.
"""

from __future__ import annotations

import gc
import marshal
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from patronage.events.importer.packed import OrderCodec, Packed, packed_from_tuples
from patronage.events.importer.prepare import PreparedOrder, prepare, prepare_json
from patronage.events.importer.readers import Format, JsonLine, Record, open_orders
from patronage.kit.errors import PatronageError
from patronage.kit.garbage import GC_THRESHOLD
from patronage.kit.http.problems import validation_problem

FailedRow = tuple[int, str | None, str, str]  # line, external id, field, reason


@dataclass
class OrderChunk:
    """One chunk of a file's orders: how many records it read, and the valid ones packed."""

    read: int = 0
    consumed: int = 0  # bytes of the file read since the previous chunk (the progress bar)
    orders: list[Packed] = field(default_factory=list)
    failures: list[FailedRow] = field(default_factory=list)

    def __reduce__(self) -> tuple[Any, ...]:
        # Down the pipe as one ``marshal`` blob of plain tuples (packed values are str, int, float, bool,
        # None, bytes): cheaper than pickling, where each ``Packed`` costs Python-level calls. Both ends
        # are this interpreter (the reader is forked), so marshal's format is the same on both.
        state = (self.read, self.consumed, list(map(tuple, self.orders)), self.failures)
        return _unmarshalled_chunk, (marshal.dumps(state),)


def _unmarshalled_chunk(blob: bytes) -> OrderChunk:
    # Written by this import's own reader process (see ``__reduce__``), never read from elsewhere.
    read, consumed, orders, failures = marshal.loads(blob)  # noqa: S302  # nosec B302
    return OrderChunk(read, consumed, packed_from_tuples(orders), failures)


def describe(error: PatronageError) -> tuple[str, str]:
    """An error as the report's ``field`` and ``reason`` (the API's first error, or its summary)."""
    problem = error.to_problem()
    items = problem.get("errors") or [{"field": "", "message": problem["detail"]}]
    first = items[0]
    reason = problem["detail"] if len(items) > 1 else str(first.get("message", problem["detail"]))
    return str(first.get("field", "")), reason


def validate_order(record: Record) -> PreparedOrder | PatronageError:
    """The record as a prepared order, or the error to report (the API's)."""
    if record.data is None:
        return PatronageError(record.error or "unreadable")
    try:
        return prepare(record.data)
    except ValidationError as exc:
        return validation_problem([dict(e) for e in exc.errors()])
    except PatronageError as exc:  # the money rule
        return exc


@dataclass(frozen=True)
class OrderFile:
    """What to read and how to pack it: the database's dialect, the workspace's currency."""

    path: Path
    fmt: Format
    chunk_size: int
    dialect: str
    currency: str


def order_chunks(source: OrderFile) -> Iterator[OrderChunk]:
    """The file's orders, ``chunk_size`` records a chunk, packed for the database."""
    codec = OrderCodec(source.dialect, source.currency)
    chunk = OrderChunk()

    def progress(count: int) -> None:
        chunk.consumed += count

    for item in open_orders(source.path, source.fmt, progress):
        chunk.read += 1
        prepared = prepare_json(item.raw) if isinstance(item, JsonLine) else None
        if prepared is not None:  # its external id is its key as written (see ``prepare_json``)
            chunk.orders.append(codec.pack(prepared, item.line))
        else:
            record = item.record() if isinstance(item, JsonLine) else item
            outcome = validate_order(record)
            if isinstance(outcome, PatronageError):
                chunk.failures.append((record.line, record.key, *describe(outcome)))
            else:
                chunk.orders.append(codec.pack(outcome, record.line, record.key))
        if chunk.read >= source.chunk_size:
            full, chunk = chunk, OrderChunk()
            yield full
    if chunk.read or chunk.consumed:
        yield chunk


def _produce(sender: Connection, receiver: Connection, source: OrderFile) -> None:
    """The reader process: chunks down the pipe, then None; an exception is sent for the parent to raise."""
    # Inherited: closed here, so a parent that stops reading closes the pipe and this process's send fails.
    receiver.close()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        for chunk in order_chunks(source):
            sender.send(chunk)
        sender.send(None)
    except (BrokenPipeError, EOFError):
        pass  # the parent stopped reading (it failed or was interrupted)
    except BaseException as exc:  # handed to the parent, which raises it
        try:
            sender.send(exc)
        except Exception:  # not picklable: its text will do
            sender.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def can_fork() -> bool:
    """Whether this process may start the reader by forking: instant, and it shares the loaded modules.

    Not with other threads running: a lock one of them holds (a stream's, a logger's) would stay held in
    the child forever. Spawning instead would re-import the caller's main module, which not every caller
    guards; so a process with threads reads in-process.
    """
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def order_chunks_in_background(source: OrderFile) -> Iterator[OrderChunk]:
    """``order_chunks`` computed by a forked child process (see ``can_fork``), one chunk ahead of the caller."""
    context: Any = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_produce, args=(sender, receiver, source),
        name="patronage-import-reader", daemon=True,
    )
    process.start()
    sender.close()  # the child's end: EOF here once the child is gone
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                raise RuntimeError(f"the import's reader process died (exit code {process.exitcode})") from None
            if message is None:
                return
            if isinstance(message, BaseException):
                raise message
            yield message
    finally:
        receiver.close()  # a child still sending gets a broken pipe and ends
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join()
