"""Orders and their early returns meet under a lock (PostgreSQL): a held return is never left waiting.

A return whose order is unknown is stored ``held``; the order, when it arrives, applies the held returns it
finds. Two transactions that run at once can each miss the other: the return looks for the order before
the order commits, the order looks for held returns before the return commits, and the return stays held
for good. So both sides take a transaction-scoped advisory lock before they look:

- a new order (``arrival`` / ``arrivals``) the exclusive lock on its key (workspace, external id), inside
  the look-up statement it runs anyway: no extra round trip on the hot path;
- a bulk import chunk, which writes thousands of orders, one exclusive lock on the workspace's arrivals;
- a return about to be held both, shared on the workspace, exclusive on the key, then looks for the order
  again (``guard_held_return``).

Whichever commits first, the other's next statement sees it. Workspace before key, keys sorted: no cycle.
SQLite needs none of this: its writers take the database's write lock when they begin (``kit/db.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from patronage.kit.upsert import dialect_name


def _key(*parts: object) -> int:
    """A signed 64-bit advisory lock key (collisions only make two arrivals wait for each other)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8, person=b"arrivals").digest()
    return int.from_bytes(digest, "big", signed=True)


def order_key(workspace_id: int, external_id: str) -> int:
    return _key("order", workspace_id, external_id)


def order_keys(workspace_id: int, external_ids: Iterable[str]) -> list[int]:
    """The keys of these orders, sorted: concurrent batches take them in one order."""
    return sorted({order_key(workspace_id, e) for e in external_ids})


def workspace_key(workspace_id: int) -> int:
    return _key("workspace", workspace_id)


def locks_orders(session: Session) -> bool:
    return dialect_name(session) == "postgresql"


_WORKSPACE_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)")
_HELD_RETURN = text("SELECT pg_advisory_xact_lock_shared(:workspace), pg_advisory_xact_lock(:order)")


def lock_workspace_arrivals(session: Session, workspace_id: int) -> None:
    """A bulk chunk's lock (before it writes anything): held returns wait for it, and it for them."""
    if locks_orders(session):
        session.execute(_WORKSPACE_EXCLUSIVE, {"key": workspace_key(workspace_id)})


def guard_held_return(session: Session, workspace_id: int, order_external_id: str) -> bool:
    """Before holding a return whose order was not found: wait for the order's arrivals in flight.

    True when locks were taken: the caller must then look for the order again (it may have committed
    while we waited); from here on, an order arriving later waits for this transaction and sees the
    held return.
    """
    if not locks_orders(session):
        return False
    session.execute(_HELD_RETURN, {"workspace": workspace_key(workspace_id),
                                   "order": order_key(workspace_id, order_external_id)})
    return True
