"""Which customer an ingested fact belongs to: resolve by external id or email, create minimal if unknown.

Profiles belong to the customers domain: this module only calls its service (``upsert_customer``,
``ensure_customers``) and its resolution look-ups.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.customers.errors import IdentityTaken
from patronage.customers.resolution import find_customer_id
from patronage.customers.schemas import CustomerUpsert
from patronage.customers.service import ensure_customers, upsert_customer


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
