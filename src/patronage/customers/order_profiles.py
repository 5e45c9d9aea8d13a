"""Profiles that one order's request creates for a first-time customer, in single-row statements.

``ensure_customers`` and ``upsert_customer`` (``service.py``) serve every path; for the common case of
``POST /orders`` (an external id, perhaps an email, that identify nobody yet) these do the same work with
a few single-row INSERTs and no savepoint (``single_row_repository.py``). When an identifier turns out to
be taken meanwhile, nothing of theirs stays and the general path decides. Never commits.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers import single_row_repository as single_row
from patronage.customers.lifecycle_rules import Stage
from patronage.customers.service import ensure_customers
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import field_error


def ensure_customer(
    session: Session, workspace_id: int, external_id: str, *, first_order: tuple[datetime, Decimal] | None,
    events: list[tuple[str, dict[str, Any]]],
) -> tuple[int, bool]:
    """``ensure_customers`` for one id the caller found unknown, in single-row statements: (customer id,
    created?).

    A created profile already counts ``first_order`` (placed_at, amount) in its aggregates, and its
    ``customer.created`` event is appended to ``events`` for the caller to record with its own (one
    INSERT for all). When the id turns out to be known after all (a concurrent writer created it, or an
    identity row names it), nothing of ours stays and the existing profile is returned, not created: its
    aggregates are the caller's to update.
    """
    if not external_id or len(external_id) > 200 or external_id != external_id.strip():
        raise field_error("external_id", f"{external_id!r} is not a valid external id")
    customer_id = single_row.insert_bare_customer(session, workspace_id, external_id, first_order=first_order)
    if customer_id is not None:
        if single_row.insert_identity_unless_taken(session, workspace_id, customer_id, "external_id", external_id):
            single_row.insert_stage_start(session, workspace_id, customer_id, Stage.PROSPECT.value, utcnow())
            events.append(("customer.created", {"customer_id": customer_id}))
            return customer_id, True
        single_row.delete_new_customer(session, workspace_id, customer_id)  # another profile holds the id
    return ensure_customers(session, workspace_id, [external_id])[external_id], False


def create_customer_for_order(
    session: Session, workspace_id: int, external_id: str, email: str, *, actor: str,
    first_order: tuple[datetime, Decimal] | None, events: list[tuple[str, dict[str, Any]]],
) -> int | None:
    """What ``upsert_customer`` does for an external id and a (normalised) email that both identify
    nobody yet, in single-row statements: the profile with both, their identities, its first stage, the
    audit row; ``first_order`` and ``customer.created`` as in ``ensure_customer``.

    None when either identifier turns out to be taken (a concurrent writer): nothing of ours stays and
    the caller takes ``upsert_customer``, which knows what to do with an existing owner.
    """
    customer_id = single_row.insert_bare_customer(
        session, workspace_id, external_id, email=email, first_order=first_order)
    if customer_id is None:
        return None
    for kind, value in (("external_id", external_id), ("email", email)):
        if not single_row.insert_identity_unless_taken(session, workspace_id, customer_id, kind, value):
            single_row.delete_new_customer(session, workspace_id, customer_id)
            return None
    single_row.insert_stage_start(session, workspace_id, customer_id, Stage.PROSPECT.value, utcnow())
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.created",
          subject_type="customer", subject_id=customer_id, data={"fields": ["email", "external_id"]})
    events.append(("customer.created", {"customer_id": customer_id}))
    return customer_id
