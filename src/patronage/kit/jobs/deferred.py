"""Debounced enqueues deferred to the end of the transaction: one statement at commit, rows in key order.

``enqueue_debounced`` locks the waiting job of each key it pushes back (the upsert's row lock), until
the transaction ends. Taken in the middle of a transaction, such a lock can deadlock with another
transaction's row locks taken in the other order: a request holding customer 7's waiting job and then
wanting a row an earlier job batch holds while that batch wants customer 7's job. Deferred, every such
lock is taken last, just before COMMIT, all in one statement in one global order: a transaction that
holds one of these rows waits for nothing but greater keys of the same statement, so no cycle can form.

A savepoint's commit does not flush them (that would take the locks mid-transaction); a rollback drops
them with everything else. Work deferred inside a savepoint that is then rolled back still runs: a
spare re-evaluation, never a lost one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from patronage.kit.jobs.queue import enqueue_debounced

_PENDING = "patronage.jobs.deferred_debounced"
# (task, workspace id, debounce) -> {unique key: payload}
Pending = dict[tuple[str, int | None, timedelta], dict[str, dict[str, Any]]]


def enqueue_debounced_at_commit(
    session: Session,
    task_name: str,
    key: str,
    payload: dict[str, Any],
    *,
    workspace_id: int | None,
    debounce: timedelta,
) -> None:
    """``enqueue(session, task_name, payload, unique_key=key, debounce=debounce)``, done when the
    session's transaction commits (with every other deferred key, one statement per task and
    workspace). A later call for the same key in the transaction replaces the payload, as a second
    debounced enqueue would."""
    pending: Pending = session.info.setdefault(_PENDING, {})
    pending.setdefault((task_name, workspace_id, debounce), {})[key] = payload


def pending_keys(session: Session) -> list[str]:
    """The keys this session's transaction will enqueue at commit, in the order it will lock them."""
    pending: Pending = session.info.get(_PENDING, {})
    return [key for group in sorted(pending, key=_order) for key in sorted(pending[group])]


def _order(group: tuple[str, int | None, timedelta]) -> tuple[str, int, timedelta]:
    task_name, workspace_id, debounce = group
    return task_name, -1 if workspace_id is None else workspace_id, debounce


@event.listens_for(Session, "before_commit")
def _enqueue_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the locks wait for the real commit
    pending: Pending | None = session.info.pop(_PENDING, None)
    # Groups and keys in one global order (enqueue_debounced sorts the keys of each statement).
    for group in sorted(pending or {}, key=_order):
        task_name, workspace_id, debounce = group
        enqueue_debounced(session, task_name, pending[group], workspace_id=workspace_id,  # type: ignore[index]
                          debounce=debounce)


@event.listens_for(Session, "after_transaction_end")
def _forget_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed (flushed) or rolled back
        session.info.pop(_PENDING, None)
