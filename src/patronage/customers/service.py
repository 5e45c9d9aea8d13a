"""Profile rules: upsert (idempotent by external id, else email, else phone), patch, identities, and
the bulk paths order ingestion uses. Never commits: the request or job boundary does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patronage.customers import lifecycle
from patronage.customers import single_row_repository as single_row
from patronage.customers.attributes import validate_attributes
from patronage.customers.definitions import attribute_specs, load_settings
from patronage.customers.errors import CustomerErased, CustomerMerged, IdentityTaken
from patronage.customers.identity_repository import IdentityRepository, TagRepository
from patronage.customers.models import Customer, CustomerIdentity
from patronage.customers.normalise import normalise_identity, normalise_phone, region_of_locale
from patronage.customers.repository import CustomerRepository
from patronage.customers.resolution import find_customer_id, find_customer_ids
from patronage.customers.schemas import CustomerFields, CustomerUpdate, CustomerUpsert, IdentityCreate
from patronage.kit.audit import audit
from patronage.kit.errors import Conflict, NotFound, field_error
from patronage.kit.idranges import to_ranges
from patronage.kit.jobs import record_event
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.types import as_decimal
from patronage.workspaces.repository import get_workspace

UpsertStatus = Literal["created", "updated", "unchanged"]
# Profile fields that are also identities, kept in sync with the identity rows.
SYNCED_IDENTITIES = ("external_id", "email", "phone")
PROFILE_FIELDS = (
    "external_id", "email", "phone", "first_name", "last_name", "birthday", "locale", "timezone",
    "country", "acquisition_source", "acquisition_channel", "signed_up_at",
)


# ---- reads -----------------------------------------------------------------------------------------
def get_customer(session: Session, workspace_id: int, customer_id: int) -> Customer:
    return CustomerRepository(session, workspace_id).get_or_404(customer_id)


def writable_customer(session: Session, workspace_id: int, customer_id: int) -> Customer:
    """The profile, refusing merged-away and erased ones (409 naming where to go instead)."""
    customer = get_customer(session, workspace_id, customer_id)
    if customer.merged_into_id is not None:
        raise CustomerMerged(customer.id, customer.merged_into_id)
    if customer.erased_at is not None:
        raise CustomerErased(customer.id)
    return customer


def search_identity_values(q: str) -> list[str]:
    """The identity values a free-text search may mean (a normalised email, an E.164 phone, as typed)."""
    values = [q.strip()]
    for kind in ("email", "phone"):
        try:
            values.append(normalise_identity(kind, q))
        except ValueError:
            continue
    return list(dict.fromkeys(values))


# ---- upsert and patch ------------------------------------------------------------------------------
def upsert_customer(
    session: Session, workspace_id: int, data: CustomerUpsert, *, actor: str, require_attributes: bool = False
) -> tuple[Literal["created", "updated", "unchanged"], Customer]:
    """Create or update the profile ``data`` identifies: by external_id, else email, else phone.

    Sending the same body twice changes nothing the second time ("unchanged"). A profile merged into
    another resolves to the survivor. Omitted fields are left alone; ``null`` clears a field.
    ``require_attributes``: a new profile must carry the workspace's required custom attributes (the
    API asks for it; ingestion of orders and events does not, it must never be refused for that).
    """
    sent = set(data.model_fields_set)
    customer = _resolve(session, workspace_id, data, sent)
    if customer is None:
        try:
            with session.begin_nested():
                created = _create(session, workspace_id, data, sent, actor=actor, required=require_attributes)
            return "created", created
        except IntegrityError:
            # A concurrent transaction created this customer (or took one of its identifiers) first:
            # what it committed is visible now, so resolve again and update instead.
            customer = _resolve(session, workspace_id, data, sent)
            if customer is None:
                raise
    if customer.erased_at is not None:
        raise CustomerErased(customer.id)
    if customer.external_id:
        sent.discard("external_id")  # found through another of its identities: its own id stays
    changed = _write(session, workspace_id, customer, _values(session, workspace_id, customer, data, sent))
    if not changed:
        return "unchanged", customer
    _changed(session, workspace_id, customer, changed, actor=actor)
    return "updated", customer


def update_customer(
    session: Session, workspace_id: int, customer_id: int, data: CustomerUpdate, *, actor: str
) -> Customer:
    customer = writable_customer(session, workspace_id, customer_id)
    values = _values(session, workspace_id, customer, data, set(data.model_fields_set))
    changed = _write(session, workspace_id, customer, values)
    if changed:
        _changed(session, workspace_id, customer, changed, actor=actor)
    return customer


def _resolve(session: Session, workspace_id: int, data: CustomerUpsert, sent: set[str]) -> Customer | None:
    repo = CustomerRepository(session, workspace_id)
    if data.external_id:
        found = find_customer_id(session, workspace_id, "external_id", data.external_id)
        if found is None:
            by_column = repo.by_external_ids([data.external_id]).get(data.external_id)
            found = (by_column[1] or by_column[0]) if by_column else None
        if found is not None:
            return repo.get_or_404(found)
    for kind in ("email", "phone"):
        raw = getattr(data, kind)
        if kind not in sent or not raw:
            continue
        value = raw if kind == "email" else _phone(session, workspace_id, None, data, raw)
        owner_id = find_customer_id(session, workspace_id, kind, value)
        if owner_id is None:
            continue
        owner = repo.get_or_404(owner_id)
        # A profile already keyed by another external id is another person sharing this contact.
        if data.external_id and owner.external_id and owner.external_id != data.external_id:
            raise IdentityTaken(kind, owner.id)
        return owner
    if not data.external_id and not data.email and not data.phone:
        raise field_error("external_id", "send external_id, email or phone so the customer can be identified")
    return None


def _create(
    session: Session, workspace_id: int, data: CustomerUpsert, sent: set[str], *, actor: str, required: bool
) -> Customer:
    values = _values(session, workspace_id, None, data, sent, required=required)
    _check_identities(session, workspace_id, None, values)  # before anything is written
    customer = CustomerRepository(session, workspace_id).add(
        Customer(workspace_id=workspace_id, tags=[], attributes={}, lifecycle_stage="prospect")
    )
    _write(session, workspace_id, customer, values)
    lifecycle.start_history(session, workspace_id, [customer.id], customer.created_at)
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.created",
          subject_type="customer", subject_id=customer.id, data={"fields": sorted(sent)})
    record_event(session, workspace_id, "customer.created", {"customer_id": customer.id})
    return customer


def _changed(session: Session, workspace_id: int, customer: Customer, changed: list[str], *, actor: str) -> None:
    # Field names only: the audit log and event payloads never hold personal data (see GDPR erase).
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.updated",
          subject_type="customer", subject_id=customer.id, data={"fields": changed})
    record_event(session, workspace_id, "customer.updated", {"customer_id": customer.id, "fields": changed})


def _phone(session: Session, workspace_id: int, customer: Customer | None, data: CustomerFields, raw: str) -> str:
    """E.164, reading national numbers in the customer's country, else the workspace's default."""
    sent = data.model_fields_set
    country = data.country if "country" in sent else (customer.country if customer else None)
    locale = data.locale if "locale" in sent else (customer.locale if customer else None)
    region = country or region_of_locale(locale)
    if region is None:
        settings, _ = load_settings(session, workspace_id)
        workspace = get_workspace(session, workspace_id)
        region = (settings.default_country if settings else None) or region_of_locale(
            workspace.locale if workspace else None
        )
    try:
        return normalise_phone(raw, region)
    except ValueError as exc:
        raise field_error("phone", str(exc)) from exc


def _values(
    session: Session, workspace_id: int, customer: Customer | None, data: CustomerFields, sent: set[str],
    *, required: bool = False,
) -> dict[str, Any]:
    """The validated, normalised values of the sent fields (nothing is written)."""
    values: dict[str, Any] = {f: getattr(data, f) for f in PROFILE_FIELDS if f in sent and hasattr(data, f)}
    if values.get("phone"):
        values["phone"] = _phone(session, workspace_id, customer, data, values["phone"])
    if customer is None or "attributes" in sent:
        current = customer.attributes if customer is not None else {}
        values["attributes"] = validate_attributes(
            attribute_specs(session, workspace_id), data.attributes or {}, current, creating=required
        )
    if "tags" in sent:
        values["tags"] = list(data.tags or [])
    return values


def _check_identities(session: Session, workspace_id: int, customer_id: int | None, values: dict[str, Any]) -> None:
    identities = IdentityRepository(session, workspace_id)
    for kind in SYNCED_IDENTITIES:
        new = values.get(kind)
        if new is None:
            continue
        existing = identities.find(kind, new)
        if existing is not None and existing.customer_id != customer_id:
            raise IdentityTaken(kind, existing.customer_id)
        if kind == "external_id":
            taken = CustomerRepository(session, workspace_id).by_external_ids([new]).get(new)
            if taken is not None and taken[0] != customer_id:
                raise IdentityTaken(kind, taken[0])


def _write(session: Session, workspace_id: int, customer: Customer, values: dict[str, Any]) -> list[str]:
    """Write ``values`` onto ``customer`` and keep identities and tag rows in step; returns what changed."""
    changed = [f for f, v in values.items() if getattr(customer, f) != v]
    if not changed:
        return []
    synced = {k: values[k] for k in SYNCED_IDENTITIES if k in changed}
    _check_identities(session, workspace_id, customer.id, synced)
    identities = IdentityRepository(session, workspace_id)
    for kind, new in synced.items():
        # The profile's own email/phone/external id always has an identity row. A previous value stays
        # as a secondary identity (old orders and logins still find the customer) until removed.
        if new is not None and identities.find(kind, new) is None:
            identities.new(customer_id=customer.id, kind=kind, value=new)
    for field in changed:
        setattr(customer, field, values[field])
    if "tags" in changed:
        TagRepository(session, workspace_id).set_tags(customer.id, customer.tags)
    session.flush()
    return changed


# ---- identities ------------------------------------------------------------------------------------
def list_identities(session: Session, workspace_id: int, customer_id: int) -> list[CustomerIdentity]:
    get_customer(session, workspace_id, customer_id)
    return IdentityRepository(session, workspace_id).for_customer(customer_id)


def add_identity(
    session: Session, workspace_id: int, customer_id: int, data: IdentityCreate, *, actor: str
) -> tuple[bool, CustomerIdentity]:
    """Attach another identifier; (created?, identity). Adding one the customer already has is a no-op."""
    customer = writable_customer(session, workspace_id, customer_id)
    if data.kind == "phone":
        value = _phone(session, workspace_id, customer, CustomerUpdate(), data.value)
    else:
        try:
            value = normalise_identity(data.kind, data.value)
        except ValueError as exc:
            raise field_error("value", str(exc)) from exc
    identities = IdentityRepository(session, workspace_id)
    existing = identities.find(data.kind, value)
    if existing is not None:
        if existing.customer_id != customer.id:
            raise IdentityTaken("value", existing.customer_id)
        return False, existing
    identity = identities.new(customer_id=customer.id, kind=data.kind, value=value)
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.identity_added",
          subject_type="customer", subject_id=customer.id, data={"kind": data.kind, "identity_id": identity.id})
    return True, identity


def remove_identity(session: Session, workspace_id: int, customer_id: int, identity_id: int, *, actor: str) -> None:
    customer = writable_customer(session, workspace_id, customer_id)
    identities = IdentityRepository(session, workspace_id)
    identity = identities.get_or_404(identity_id)
    if identity.customer_id != customer.id:
        raise NotFound(f"identity {identity_id} not found")
    if getattr(customer, identity.kind, None) == identity.value:
        raise Conflict(
            f"this {identity.kind} is the profile's own; change the profile's {identity.kind} instead",
            field=identity.kind,
        )
    session.delete(identity)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.identity_removed",
          subject_type="customer", subject_id=customer.id, data={"kind": identity.kind, "identity_id": identity_id})


# ---- bulk paths for order ingestion -----------------------------------------------------------------
def ensure_customers(
    session: Session, workspace_id: int, external_ids: list[str], *, batch: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """external_id -> customer id for every id given, creating bare profiles for unknown ones.

    Set-based for imports: one look-up per 500 ids, multi-row INSERTs for profiles, their external_id
    identities and their first stage-history rows. Merged profiles resolve to their survivor.
    New profiles record ``customer.created`` each, or - with ``batch`` (bulk imports; its items join the
    payload, e.g. ``source``, ``earn``) - one ``customers.imported`` event for all of them.
    """
    wanted = list(dict.fromkeys(external_ids))
    for external_id in wanted:
        if not external_id or len(external_id) > 200 or external_id != external_id.strip():
            raise field_error("external_id", f"{external_id!r} is not a valid external id")
    return _ensure(session, workspace_id, wanted, attempts=3, batch=batch)


def _ensure(
    session: Session, workspace_id: int, wanted: list[str], *, attempts: int, batch: Mapping[str, Any] | None
) -> dict[str, int]:
    found = find_customer_ids(session, workspace_id, [("external_id", e) for e in wanted])
    result = {e: found[("external_id", e)] for e in wanted if ("external_id", e) in found}
    missing = [e for e in wanted if e not in result]
    if missing:
        repo = CustomerRepository(session, workspace_id)
        for external_id, (customer_id, merged_into) in repo.by_external_ids(missing).items():
            result[external_id] = merged_into or customer_id
        missing = [e for e in missing if e not in result]
    if not missing:
        return result
    try:
        with session.begin_nested():
            result.update(_insert_minimal(session, workspace_id, missing, batch))
    except IntegrityError:
        # A concurrent import created some of them first (PostgreSQL): take theirs, create the rest.
        if attempts <= 1:
            raise
        result.update(_ensure(session, workspace_id, missing, attempts=attempts - 1, batch=batch))
    return result


def _insert_minimal(
    session: Session, workspace_id: int, external_ids: list[str], batch: Mapping[str, Any] | None
) -> dict[str, int]:
    created = CustomerRepository(session, workspace_id).insert_minimal(external_ids)
    IdentityRepository(session, workspace_id).insert_many([(cid, "external_id", e) for e, cid in created.items()])
    lifecycle.start_history(session, workspace_id, list(created.values()), None)
    if batch is not None:
        record_customers_imported(session, workspace_id, list(created.values()), batch)
    else:
        record_events_bulk(
            session, workspace_id, [("customer.created", {"customer_id": cid}) for cid in created.values()]
        )
    return created


def record_customers_imported(
    session: Session, workspace_id: int, customer_ids: Sequence[int], extra: Mapping[str, Any]
) -> None:
    """One ``customers.imported`` event ``{customer_ids: [[first, last], ...], count, **extra}`` for the
    profiles a bulk load created, instead of ``customer.created`` each; subscribers work set-based."""
    if customer_ids:
        record_event(session, workspace_id, "customers.imported", {
            **extra, "customer_ids": to_ranges(customer_ids), "count": len(customer_ids),
        })


def record_new_orders_totals(session: Session, workspace_id: int, order_ranges: Sequence[Sequence[int]]) -> None:
    """``record_orders_totals`` for a bulk insert of new orders, named by id ranges: set-based in SQL."""
    if order_ranges:
        CustomerRepository(session, workspace_id).add_totals_of_orders(order_ranges)


def record_orders_totals(
    session: Session,
    workspace_id: int,
    updates: Sequence[tuple[int, datetime | None, Decimal | int | float | str, int]],
) -> None:
    """Apply relative changes to the order aggregates: (customer id, placed_at, amount delta, orders delta).

    ``orders_count += n``, ``total_spent += amount``, ``first_order_at = min(...)``, ``last_order_at =
    max(...)``; a ``placed_at`` of None leaves the dates alone (returns, refunds). Several updates for one
    customer are folded first; rows are updated in id order with one executemany per shape.
    """
    folded: dict[int, list[Any]] = {}
    for customer_id, placed_at, amount, orders in updates:
        entry = folded.setdefault(customer_id, [None, None, Decimal(0), 0])
        if placed_at is not None:
            entry[0] = placed_at if entry[0] is None else min(entry[0], placed_at)
            entry[1] = placed_at if entry[1] is None else max(entry[1], placed_at)
        entry[2] += as_decimal(amount)
        entry[3] += int(orders)
    totals = [(cid, e[0], e[1], e[2], e[3]) for cid, e in sorted(folded.items())]
    if len(totals) == 1 and totals[0][1] == totals[0][2]:  # one order or refund: one cached statement
        customer_id, placed_at, _, amount, orders = totals[0]
        session.flush()  # as add_order_totals: pending ORM changes go first
        single_row.add_one_order_total(session, workspace_id, customer_id, placed_at=placed_at, amount=amount,
                                       orders=orders)
    elif totals:
        CustomerRepository(session, workspace_id).add_order_totals(totals)
