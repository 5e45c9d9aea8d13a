"""Queries that remove what still quotes an erased customer outside the profile (GDPR erasure).

Stored idempotent responses and job payloads are matched by the erased values themselves (e-mail
addresses, phone numbers, external ids) with an escaped ``LIKE``, since they are opaque JSON here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from patronage.customers.repository import like_pattern


def purge_stored_responses(session: Session, workspace_id: int, needles: Sequence[str]) -> int:
    """Delete the workspace's stored idempotent responses that quote any of ``needles`` (erasure)."""
    from patronage.kit.idempotency import IdempotencyRecord

    if not needles:
        return 0
    matches = [IdempotencyRecord.body.like(like_pattern(n), escape="\\") for n in needles]
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.workspace_id == workspace_id, or_(*matches))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_jobs(session: Session, workspace_id: int, needles: Sequence[str]) -> int:
    """Delete the workspace's jobs whose payload quotes any of ``needles`` (erasure): an e-mail still
    waiting for the erased address is never sent, and finished jobs keep no copy of it."""
    from sqlalchemy import Text
    from sqlalchemy import cast as sql_cast

    from patronage.kit.jobs.models import Job

    if not needles:
        return 0
    payload = sql_cast(Job.payload, Text)
    matches = [payload.like(like_pattern(n), escape="\\") for n in needles]
    result = session.execute(delete(Job).where(Job.workspace_id == workspace_id, or_(*matches)))
    return int(result.rowcount)  # type: ignore[attr-defined]
