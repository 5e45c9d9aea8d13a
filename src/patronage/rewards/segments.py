"""Segment membership for reward availability, pluggable until the segments domain exists.

The segments domain registers its checker at import time::

    from patronage.rewards.segments import register_segment_checker
    register_segment_checker(lambda session, ws, customer_id, segment_ids: ...)

Without a checker, a reward restricted to segments is offered to nobody (fail closed): a reward meant
for a few must not go to everyone because membership cannot be evaluated yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

SegmentChecker = Callable[[Session, int, int, Sequence[int]], bool]
_checker: SegmentChecker | None = None


def register_segment_checker(checker: SegmentChecker | None) -> None:
    """``checker(session, workspace_id, customer_id, segment_ids)``: True if the customer belongs to any."""
    global _checker
    _checker = checker


def in_any_segment(session: Session, workspace_id: int, customer_id: int, segment_ids: Sequence[int]) -> bool:
    if not segment_ids:
        return True
    if _checker is None:
        return False
    return bool(_checker(session, workspace_id, customer_id, list(segment_ids)))
