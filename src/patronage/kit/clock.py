"""The one source of "now". Tests freeze or move it; business code never calls datetime.now()."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_frozen: datetime | None = None


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    frozen = _frozen
    return frozen if frozen is not None else datetime.now(UTC)


def freeze(at: datetime) -> None:
    global _frozen
    if at.tzinfo is None:
        raise ValueError("frozen time must be timezone-aware")
    with _lock:
        _frozen = at.astimezone(UTC)


def advance(delta: timedelta) -> None:
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("the clock is not frozen")
        _frozen = _frozen + delta


def unfreeze() -> None:
    global _frozen
    with _lock:
        _frozen = None


@contextmanager
def frozen_at(at: datetime) -> Iterator[None]:
    freeze(at)
    try:
        yield
    finally:
        unfreeze()
