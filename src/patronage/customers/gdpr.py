"""GDPR: export everything about a customer as JSON, and erase their personal data.

Later domains add their data with ``register_exporter(name, fn)`` (``fn(session, workspace_id,
customer_id) -> JSON-able``, placed under ``name`` in the document) and ``register_eraser(name, fn)``
(``fn(session, workspace_id, customer_id) -> None``: strip personal data but keep amounts, points and
dates so balances and aggregates stay consistent). Both get the surviving profile's id: a merge has
moved everything attached to the merged-away profiles onto it.

Erasure guarantees: email, phone, names, birthday, time zone, tags, custom attributes and every
identity are removed (the external id becomes ``erased-<id>``), so the person cannot be found again by
their old identifiers; behavioural event properties, order attributes and return reasons are
emptied; consent decisions are kept as evidence without their IP and user agent, and every live
consent is withdrawn; order totals, aggregates and the lifecycle history stay; one audit row records
the erasure (audit rows never contain personal data).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers import consent, lifecycle
from patronage.customers.activity_repository import ActivityRepository
from patronage.customers.consent_repository import ConsentEvidenceRepository, ConsentStateRepository
from patronage.customers.consent_schemas import ConsentEvidenceOut, ConsentStateOut
from patronage.customers.erasure_repository import purge_jobs, purge_stored_responses
from patronage.customers.errors import CustomerMerged
from patronage.customers.identity_repository import IdentityRepository, TagRepository
from patronage.customers.models import Customer
from patronage.customers.repository import CustomerRepository
from patronage.customers.schemas import CustomerOut, IdentityOut, StageHistoryOut
from patronage.customers.service import get_customer
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.jobs import record_event

Exporter = Callable[[Session, int, int], Any]
Eraser = Callable[[Session, int, int], None]
_EXPORTERS: dict[str, Exporter] = {}
_ERASERS: dict[str, Eraser] = {}
EXPORT_FORMAT = "patronage.customer-export.v1"
# Profile columns holding personal data, cleared on erasure.
ERASED_FIELDS = ("email", "phone", "first_name", "last_name", "birthday", "timezone")


def register_exporter(name: str, fn: Exporter) -> None:
    _EXPORTERS[name] = fn


def register_eraser(name: str, fn: Eraser) -> None:
    _ERASERS[name] = fn


def jsonable(value: Any) -> Any:
    """Plain JSON: decimals as strings (exact), times as ISO 8601."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: jsonable(getattr(obj, c.key)) for c in obj.__table__.columns}


def _family(session: Session, workspace_id: int, customer: Customer) -> list[Customer]:
    """The customer and every profile merged into it, directly or through a chain."""
    repo = CustomerRepository(session, workspace_id)
    family, frontier = [customer], [customer.id]
    while frontier and len(family) < 1000:
        found = [c for cid in frontier for c in repo.merged_into(cid)]
        family.extend(found)
        frontier = [c.id for c in found]
    return family


def export_customer(session: Session, workspace_id: int, customer_id: int) -> dict[str, Any]:
    """Everything known about the customer (and the profiles merged into it), as one JSON document."""
    customer = get_customer(session, workspace_id, customer_id)
    family = _family(session, workspace_id, customer)
    ids = [c.id for c in family]
    activity = ActivityRepository(session, workspace_id)
    identities = IdentityRepository(session, workspace_id)
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "customer": CustomerOut.model_validate(customer).model_dump(mode="json"),
        "merged_profiles": [CustomerOut.model_validate(c).model_dump(mode="json") for c in family[1:]],
        "identities": [IdentityOut.model_validate(i).model_dump(mode="json")
                       for cid in ids for i in identities.for_customer(cid)],
        "consents": [ConsentStateOut.model_validate(s).model_dump(mode="json")
                     for s in ConsentStateRepository(session, workspace_id).for_customers(ids)],
        "consent_evidence": [ConsentEvidenceOut.model_validate(e).model_dump(mode="json")
                             for e in ConsentEvidenceRepository(session, workspace_id).all_for(ids)],
        "lifecycle_history": [StageHistoryOut.model_validate(h).model_dump(mode="json")
                              for cid in ids for h in lifecycle.history(session, workspace_id, cid)],
        "orders": [{**_row(o), "lines": [_row(line) for line in o.lines]} for o in activity.orders_of(ids)],
        "returns": [_row(r) for r in activity.returns_of(ids)],
        "events": [_row(e) for e in activity.events_of(ids)],
    }
    for name, exporter in _EXPORTERS.items():
        document[name] = jsonable(exporter(session, workspace_id, customer.id))
    return document


def erase_customer(session: Session, workspace_id: int, customer_id: int, *, actor: str) -> Customer:
    """Remove or pseudonymise the customer's personal data (and that of profiles merged into it).

    Erasing an erased customer changes nothing. A merged-away profile is erased through its survivor.
    """
    customer = get_customer(session, workspace_id, customer_id)
    if customer.merged_into_id is not None:
        raise CustomerMerged(customer.id, customer.merged_into_id)
    if customer.erased_at is not None:
        return customer
    now = utcnow()
    family = _family(session, workspace_id, customer)
    ids = [c.id for c in family]
    identities = IdentityRepository(session, workspace_id)
    removed_identities = 0
    contacts = [v for p in family for v in (p.email, p.phone) if v]
    for profile in family:
        consent.withdraw_all(session, workspace_id, profile.id, source="erasure", actor=actor)
        removed_identities += identities.remove_all(profile.id)
        for field in ERASED_FIELDS:
            setattr(profile, field, None)
        profile.attributes, profile.tags = {}, []
        profile.external_id = f"erased-{profile.id}"
        profile.erased_at = now
        TagRepository(session, workspace_id).set_tags(profile.id, [])
    scrubbed = ActivityRepository(session, workspace_id).scrub(ids)
    # Stored API responses (24 h idempotency replays) may quote the old contact details.
    scrubbed["idempotency_records"] = purge_stored_responses(session, workspace_id, contacts)
    # Jobs carry copies of what they act on: a magic-link e-mail to the old address, say.
    scrubbed["jobs"] = purge_jobs(session, workspace_id, contacts)
    scrubbed["consent_evidence"] = ConsentEvidenceRepository(session, workspace_id).strip_pii(ids, now)
    for eraser in _ERASERS.values():
        eraser(session, workspace_id, customer.id)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.erased", subject_type="customer",
          subject_id=customer.id, data={"profiles": ids, "identities_removed": removed_identities,
                                        "rows_scrubbed": scrubbed, "erasers": sorted(_ERASERS)})
    record_event(session, workspace_id, "customer.erased", {"customer_id": customer.id, "profiles": ids})
    return customer
