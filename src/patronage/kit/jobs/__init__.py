"""Database-backed job queue: transactional enqueue, leased claims, retries, dead letters, cron, events.

Public surface: ``task`` / ``on_event`` / ``periodic`` to register work, ``enqueue`` / ``record_event`` to
schedule it inside the caller's transaction, and ``Worker`` to run it.
"""

from patronage.kit.jobs.queue import enqueue, record_event
from patronage.kit.jobs.registry import JobContext, RecordedFailure, on_event, periodic, task

__all__ = ["JobContext", "RecordedFailure", "enqueue", "on_event", "periodic", "record_event", "task"]
