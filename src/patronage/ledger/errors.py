"""Ledger errors (each renders as problem+json with a stable code)."""

from __future__ import annotations

from patronage.kit.errors import Conflict


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    title = "Not enough points"


class SourceConflict(Conflict):
    """The same source already produced a transaction with other values (idempotency mismatch)."""

    code = "ledger_source_conflict"
    title = "This source already produced a different ledger transaction"
