"""Identity resolution: which customer does an external id / email / phone refer to?

Used by every ingestion path. A profile merged into another resolves to the survivor.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer, CustomerIdentity
from patronage.kit.upsert import matching_batches

IdentityKey = tuple[str, str]  # (kind, normalised value)


def find_customer_ids(session: Session, workspace_id: int, keys: Iterable[IdentityKey]) -> dict[IdentityKey, int]:
    """Bulk look-up: the customer id for each known (kind, value); unknown keys are absent."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in dict.fromkeys(keys):
        by_kind.setdefault(kind, []).append(value)
    found: dict[IdentityKey, int] = {}
    # One kind per query (``kind = ? AND value IN (...)``): a plain range of the unique index on both
    # databases, where a row-value IN of pairs is not always planned as one.
    for kind, values in by_kind.items():
        for matching in matching_batches(session, CustomerIdentity.value, values):
            stmt = select(CustomerIdentity.value, CustomerIdentity.customer_id).where(
                CustomerIdentity.workspace_id == workspace_id, CustomerIdentity.kind == kind, matching
            )
            for value, customer_id in session.execute(stmt):
                found[(kind, value)] = customer_id
    return _follow_merges(session, workspace_id, found)


def _follow_merges(session: Session, workspace_id: int, found: dict[IdentityKey, int]) -> dict[IdentityKey, int]:
    redirects: dict[int, int | None] = {}
    for matching in matching_batches(session, Customer.id, list(found.values())):
        stmt = select(Customer.id, Customer.merged_into_id).where(
            Customer.workspace_id == workspace_id, matching, Customer.merged_into_id.is_not(None)
        )
        redirects.update({cid: into for cid, into in session.execute(stmt)})
    if not redirects:
        return found
    for key, first_id in found.items():
        current, seen = first_id, 0
        while current in redirects and seen < 20:
            survivor = redirects[current]
            if survivor is None:
                break
            current, seen = survivor, seen + 1
        found[key] = current
    return found


def find_customer_id(session: Session, workspace_id: int, kind: str, value: str) -> int | None:
    return find_customer_ids(session, workspace_id, [(kind, value)]).get((kind, value))
