"""Database-backed job queue: transactional enqueue, leased claims, retries, dead letters, cron, events.

Public surface: ``task`` / ``on_event`` / ``periodic`` / ``relay`` to register work, ``enqueue`` /
``enqueue_debounced_at_commit`` / ``record_event`` to schedule it inside the caller's transaction, and
``Worker`` to run it.
"""

from patronage.kit.jobs.deferred import enqueue_debounced_at_commit
from patronage.kit.jobs.queue import enqueue, record_event
from patronage.kit.jobs.registry import JobContext, RecordedFailure, batch_of, on_event, periodic, relay, task

__all__ = ["JobContext", "RecordedFailure", "batch_of", "enqueue", "enqueue_debounced_at_commit", "on_event",
           "periodic", "record_event", "relay", "task"]
