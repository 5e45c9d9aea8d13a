"""Which customer an ingested fact belongs to: resolve by external id or email, create minimal if unknown.

Profiles belong to the customers domain: this module only calls its service (``upsert_customer``,
``ensure_customers``, ``ensure_customer``) and its resolution look-ups.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.errors import IdentityTaken
from patronage.customers.order_profiles import create_customer_for_order, ensure_customer
from patronage.customers.resolution import find_customer_id
from patronage.customers.schemas import CustomerUpsert
from patronage.customers.service import ensure_customers, upsert_customer
from patronage.events.arrival_repository import Arrival
from patronage.events.schemas import OrderIn


def find_customer(session: Session, workspace_id: int, *, external_id: str | None, email: str | None) -> int | None:
    """The known customer these identifiers point to (external id first), without creating one."""
    if external_id:
        found = find_customer_id(session, workspace_id, "external_id", external_id)
        if found is not None:
            return found
    if email:
        return find_customer_id(session, workspace_id, "email", email)
    return None


def resolve_customer(
    session: Session,
    workspace_id: int,
    *,
    external_id: str | None,
    email: str | None,
    actor: str,
    profile: CustomerUpsert | None = None,
) -> int:
    """The customer id for an order or event, creating a minimal profile for an unknown customer.

    ``profile`` (e.g. from a Shopify order) is upserted first, so details the shop knows are kept fresh.
    """
    if profile is not None and (profile.external_id or profile.email):
        try:
            with session.begin_nested():
                _, customer = upsert_customer(session, workspace_id, profile, actor=actor)
            return customer.id
        except IdentityTaken:
            pass  # the email belongs to another profile: fall back to the ids alone
    if external_id:
        found = find_customer_id(session, workspace_id, "external_id", external_id)
        if found is not None:
            return found
        if email:
            try:
                with session.begin_nested():
                    data = CustomerUpsert(external_id=external_id, email=email)
                    _, customer = upsert_customer(session, workspace_id, data, actor=actor)
                return customer.id
            except IdentityTaken:
                pass  # another profile has this email: the external id still names a new customer
        return ensure_customers(session, workspace_id, [external_id])[external_id]
    if not email:
        raise ValueError("an external id or an email is needed to find a customer")
    found = find_customer_id(session, workspace_id, "email", email)
    if found is not None:
        return found
    _, customer = upsert_customer(session, workspace_id, CustomerUpsert(email=email), actor=actor)
    return customer.id


def customer_for_order(
    session: Session, workspace_id: int, data: OrderIn, known: Arrival, *, actor: str,
    events: list[tuple[str, dict[str, Any]]], first_order: tuple[datetime, Decimal] | None,
) -> tuple[int, bool]:
    """``resolve_customer`` for a new order whose identifiers the arrival look-up already checked:
    (customer id, created?).

    The usual cases cost no further look-up: a known identity, or a new customer named by an unknown
    external id (and an unknown email, if any), whose profile is created with ``first_order`` in its
    aggregates and its ``customer.created`` appended to ``events``. Anything else (an email to attach to
    an existing profile, an unknown email alone, a merged profile) takes ``resolve_customer``.
    """
    external_id, email = data.customer_external_id, data.customer_email
    found: int | None = None
    if external_id:
        found = _followed(session, workspace_id, "external_id", external_id, known.by_external_identity)
        if found is None and not email:
            if known.by_external_column is not None:  # as ensure_customers: the profile column, one hop
                customer_id, merged_into = known.by_external_column
                return merged_into or customer_id, False
            return ensure_customer(session, workspace_id, external_id, first_order=first_order, events=events)
        if found is None and email and known.by_external_column is None and known.by_email_identity is None:
            created = create_customer_for_order(session, workspace_id, external_id, email, actor=actor,
                                                first_order=first_order, events=events)
            if created is not None:
                return created, True
    elif email:
        found = _followed(session, workspace_id, "email", email, known.by_email_identity)
    if found is not None:
        return found, False
    return resolve_customer(session, workspace_id, external_id=external_id, email=email, actor=actor), False


def _followed(
    session: Session, workspace_id: int, kind: str, value: str, identity: tuple[int, int | None] | None
) -> int | None:
    """The profile an identity row names; a merged-away one is followed to its survivor (rare: a query)."""
    if identity is None:
        return None
    customer_id, merged_into = identity
    if merged_into is None:
        return customer_id
    return find_customer_id(session, workspace_id, kind, value)
