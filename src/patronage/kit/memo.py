"""Values remembered for the length of one transaction: looked up once, however many events ask.

A relay runs for every event a transaction records (an order batch records dozens); what it needs to
know about the workspace is the same for all of them and may change only with another transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

T = TypeVar("T")
_MEMO = "patronage.transaction_memo"


def per_transaction(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, remembered under ``key`` until the session's outermost transaction ends."""
    memo: dict[Hashable, Any] = session.info.setdefault(_MEMO, {})
    if key not in memo:
        memo[key] = compute()
    value: T = memo[key]
    return value


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed or rolled back: the next transaction may see otherwise
        session.info.pop(_MEMO, None)


def forget(session: Session, key: Hashable) -> None:
    """Drop what was remembered under ``key``: this transaction has just changed it."""
    session.info.get(_MEMO, {}).pop(key, None)
