"""Reading what a batch event names: ``orders.imported`` and ``customers.imported``.

Bulk imports record one event per chunk instead of one per order or profile (see docs/ingestion.md);
its subscribers use these helpers to read the chunk's rows set-based.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from patronage.events.repository import OrderRepository
from patronage.kit.idranges import from_ranges

ORDERS_IMPORTED = "orders.imported"
CUSTOMERS_IMPORTED = "customers.imported"


def imported_orders(session: Session, workspace_id: int, payload: Mapping[str, Any]) -> list[Any]:
    """The orders an ``orders.imported`` payload names: rows of id, customer_id, placed_at, total, status."""
    ranges = [(int(a), int(b)) for a, b in payload.get("order_ids") or []]
    return OrderRepository(session, workspace_id).summaries(ranges)


def imported_customer_ids(payload: Mapping[str, Any]) -> list[int]:
    """The profiles a ``customers.imported`` payload names."""
    return list(from_ranges(payload.get("customer_ids") or []))


def earns(payload: Mapping[str, Any]) -> bool:
    """Whether the import asked for points (``--earn``, the default); demo loads post theirs in one replay."""
    return bool(payload.get("earn", True))
