"""Which event types a workspace's webhook endpoints want, cached, so recording an event that no endpoint
subscribes to enqueues no fan-out job at all.

Every write and every job records events; most workspaces have no endpoint, or endpoints for a few
types. Without this look-up each event would cost a ``webhooks.fan_out`` job whose only work is to
find nothing. The answer is cached per process for ``CACHE_SECONDS``:

- in the process that changes an endpoint (create, update, delete) the cache is dropped at once and
  again after the change commits, so a look-up made meanwhile cannot keep the old answer;
- another process (a second server, a worker recording ``points.earned``) sees the change within
  ``CACHE_SECONDS``. Events it records in that window go by the old subscriptions: an endpoint that
  was just created may miss them, one that was just removed gets a fan-out job that finds nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from patronage.webhooks.models import WebhookEndpoint

CACHE_SECONDS = 2.0
clock = time.monotonic  # a module attribute so tests can move it
TEST_EVENT = "webhook.test"
_MAX_ENTRIES = 10_000


def subscribes(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``patterns`` ("*", "customer.*", exact types) gets the event."""
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


class _Cache:
    """Workspace id -> (expiry on the monotonic clock, every pattern of its active endpoints)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def patterns(self, session: Session, workspace_id: int) -> tuple[str, ...]:
        # Keyed by database too: tests (and tools) use several databases in one process.
        key = (str(session.get_bind().engine.url), workspace_id)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > clock():
            return entry[1]
        stmt = select(WebhookEndpoint.event_types).where(
            WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.active.is_(True)
        )
        found = tuple(sorted({p for types in session.scalars(stmt) for p in (types or ())}))
        with self._lock:
            if len(self._entries) > _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (clock() + CACHE_SECONDS, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = _Cache()


def wants(session: Session, workspace_id: int, event_type: str) -> bool:
    """Whether the event needs a fan-out job: a test event always does, others when an endpoint subscribes."""
    return event_type == TEST_EVENT or subscribes(CACHE.patterns(session, workspace_id), event_type)


def changed(session: Session) -> None:
    """An endpoint is being created, changed or deleted in ``session``'s transaction: forget the cached
    subscriptions now and once more when the transaction commits (a look-up by another request of this
    process in between would otherwise cache the old answer)."""
    CACHE.clear()
    event.listen(session, "after_commit", lambda _session: CACHE.clear(), once=True)
