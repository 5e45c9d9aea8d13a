"""Bulk work with the cyclic garbage collector running rarely (``few_collections``).

Bulk paths (imports, the demo load, earning replays) allocate hundreds of thousands of short-lived
containers with no cycles among them while keeping a large working set alive. At the default threshold
(700 allocations) a collection starts every few hundred rows, and every few of those walks the whole
working set: a fifth to a quarter of such a job's CPU. Reference counting still frees everything at
once; only the search for cycles waits.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

GC_THRESHOLD = 200_000  # allocations between generation-0 collections while bulk work runs
P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_active = 0
_saved: tuple[int, ...] = ()


def _enter() -> None:
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(GC_THRESHOLD, *_saved[1:])
        _active += 1


def _exit() -> None:
    global _active
    with _lock:
        _active -= 1
        if _active == 0:
            gc.set_threshold(*_saved)


def few_collections(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with collections rare. Process-wide (the collector is): the first of overlapping calls,
    from any thread, raises the threshold and the last one to finish restores it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _enter()
        try:
            return fn(*args, **kwargs)
        finally:
            _exit()

    return wrapper


# A server's young collections: every 20,000 allocations instead of 700 (a request allocates thousands).
SERVING_THRESHOLD = 20_000


def settle_for_serving() -> None:
    """A long-running process (an HTTP server, a worker) once its code and application are loaded.

    Everything alive then (modules, the app, SQLAlchemy's mappers, pydantic's validators: hundreds of
    thousands of objects) stays alive for good, yet every full collection walked it all again: a pause
    of tens of milliseconds in whichever request it hit. ``gc.freeze`` takes those objects out of the
    collector's view; collecting first keeps garbage out of the frozen set. Young collections run less
    often, as under ``few_collections``, and still find the cycles requests leave.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVING_THRESHOLD, *gc.get_threshold()[1:])
