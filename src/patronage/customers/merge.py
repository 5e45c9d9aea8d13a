"""Merging a duplicate profile into a survivor: everything attached moves, nothing is lost.

Other domains declare the tables they attach to customers with ``register_customer_table`` (a plain
``customer_id`` column that can simply be re-pointed) or, when rows must be combined (one points
account per customer, say), with ``register_merge_handler``. Both run inside the merge's transaction,
tables first, then handlers, before the profiles themselves are combined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Column
from sqlalchemy.orm import InstrumentedAttribute, Session

from patronage.customers import consent, lifecycle
from patronage.customers.consent_repository import ConsentStateRepository
from patronage.customers.errors import CustomerErased, CustomerMerged
from patronage.customers.identity_repository import TagRepository
from patronage.customers.models import ConsentEvidence, Customer, CustomerIdentity
from patronage.customers.repository import CustomerRepository, move_rows
from patronage.events.models import BehaviourEvent, Order
from patronage.kit.audit import audit
from patronage.kit.errors import NotFound, field_error
from patronage.kit.jobs import record_event

# fn(session, workspace_id, from_customer_id, into_customer_id, *, actor): move/combine from -> into.
MergeHandler = Callable[..., None]

_TABLES: dict[str, Column[Any]] = {}
_HANDLERS: dict[str, MergeHandler] = {}

# Filled on the survivor from the duplicate when the survivor has no value.
FILLABLE = (
    "email", "phone", "first_name", "last_name", "birthday", "locale", "timezone", "country",
    "acquisition_source", "acquisition_channel",
)


def register_customer_table(column: InstrumentedAttribute[Any] | Column[Any], *, name: str | None = None) -> None:
    """Declare a ``customer_id`` column whose rows move to the survivor on merge.

    The column's table must have a ``workspace_id`` column (every ``WorkspaceScoped`` model has).
    """
    col: Column[Any] = column.property.columns[0] if isinstance(column, InstrumentedAttribute) else column
    _TABLES[name or str(col.table.name)] = col


def register_merge_handler(name: str, fn: MergeHandler) -> None:
    """Run ``fn(session, workspace_id, from_customer_id, into_customer_id, actor=...)`` on every merge.

    ``from_customer_id`` is the duplicate that goes away, ``into_customer_id`` the survivor.
    """
    _HANDLERS[name] = fn


def customer_tables() -> dict[str, Column[Any]]:
    return dict(_TABLES)


register_customer_table(Order.customer_id)  # returns belong to orders and follow them
register_customer_table(BehaviourEvent.customer_id)
register_customer_table(ConsentEvidence.customer_id)


def merge_customers(
    session: Session, workspace_id: int, survivor_id: int, duplicate_id: int, *, actor: str
) -> tuple[Customer, dict[str, int]]:
    """Merge ``duplicate_id`` into ``survivor_id``; returns (survivor, rows moved per table)."""
    if survivor_id == duplicate_id:
        raise field_error("duplicate_id", "a customer cannot be merged into itself")
    repo = CustomerRepository(session, workspace_id)
    repo.get_or_404(survivor_id)
    if repo.get(duplicate_id) is None:
        raise NotFound(f"customer {duplicate_id} not found", field="duplicate_id")
    locked = {c.id: c for c in repo.lock([survivor_id, duplicate_id])}
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    for customer in (survivor, duplicate):
        if customer.merged_into_id is not None:
            raise CustomerMerged(customer.id, customer.merged_into_id)
        if customer.erased_at is not None:
            raise CustomerErased(customer.id)

    moved = {"customer_identities": move_rows(session, _column(CustomerIdentity.customer_id), workspace_id,
                                              duplicate.id, survivor.id)}
    for name, column in _TABLES.items():
        moved[name] = move_rows(session, column, workspace_id, duplicate.id, survivor.id)
    for handler in _HANDLERS.values():
        handler(session, workspace_id, duplicate.id, survivor.id, actor=actor)

    _combine_profiles(session, workspace_id, survivor, duplicate)
    repo.absorb_totals(survivor, duplicate)
    duplicate.merged_into_id = survivor.id
    repo.repoint_merged(duplicate.id, survivor.id)
    session.flush()

    consent.rebuild_states(session, workspace_id, survivor.id)
    ConsentStateRepository(session, workspace_id).clear(duplicate.id)
    lifecycle.close_history(session, workspace_id, duplicate.id)
    lifecycle.recompute_customer(session, workspace_id, survivor.id)

    audit(session, workspace_id=workspace_id, actor=actor, action="customer.merged", subject_type="customer",
          subject_id=survivor.id, data={"duplicate_id": duplicate.id, "moved": moved})
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.merged_into", subject_type="customer",
          subject_id=duplicate.id, data={"survivor_id": survivor.id})
    record_event(session, workspace_id, "customer.merged", {"survivor_id": survivor.id, "duplicate_id": duplicate.id})
    refreshed = repo.refresh(survivor.id)
    assert refreshed is not None
    return refreshed, moved


def _column(attribute: InstrumentedAttribute[Any]) -> Column[Any]:
    col: Column[Any] = attribute.property.columns[0]
    return col


def _combine_profiles(session: Session, workspace_id: int, survivor: Customer, duplicate: Customer) -> None:
    """The survivor keeps its values and gains the duplicate's where it had none."""
    for field in FILLABLE:
        if getattr(survivor, field) in (None, "") and getattr(duplicate, field) not in (None, ""):
            setattr(survivor, field, getattr(duplicate, field))
    if survivor.external_id is None and duplicate.external_id is not None:
        # The external id is unique per workspace: free it on the duplicate first.
        external_id, duplicate.external_id = duplicate.external_id, None
        session.flush()
        survivor.external_id = external_id
    signed_up = [t for t in (survivor.signed_up_at, duplicate.signed_up_at) if t is not None]
    if signed_up:
        survivor.signed_up_at = min(signed_up)
    survivor.attributes = {**(duplicate.attributes or {}), **(survivor.attributes or {})}
    tags = list(dict.fromkeys([*(survivor.tags or []), *(duplicate.tags or [])]))
    if tags != survivor.tags:
        survivor.tags = tags
        TagRepository(session, workspace_id).set_tags(survivor.id, tags)
    session.flush()
