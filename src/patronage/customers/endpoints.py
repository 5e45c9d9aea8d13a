"""HTTP routes for customer profiles, identities, merge, timeline, lifecycle and GDPR. Translation only.

Consent routes live in consent_endpoints.py and workspace definitions (attributes, topics, settings)
in definition_endpoints.py; both are mounted on this module's ``router``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from patronage.customers import gdpr, lifecycle, merge, service, timeline
from patronage.customers.consent_endpoints import router as consent_router
from patronage.customers.definition_endpoints import router as definition_router
from patronage.customers.lifecycle_rules import Stage
from patronage.customers.models import Customer
from patronage.customers.repository import CustomerRepository
from patronage.customers.schemas import (
    CustomerBatch,
    CustomerOut,
    CustomerUpdate,
    CustomerUpsert,
    IdentityCreate,
    IdentityOut,
    LifecycleOut,
    MergeRequest,
    MergeResult,
    StageHistoryOut,
)
from patronage.kit.batch import BatchResult, run_batch
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page, paginate_by_id
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["customers"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.CUSTOMERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.CUSTOMERS_WRITE))]
Eraser = Annotated[Principal, Depends(require(Permission.CUSTOMERS_ERASE))]


@router.post("/customers", response_model=CustomerOut, responses={201: {"model": CustomerOut}})
def upsert_customer(body: CustomerUpsert, response: Response, session: DbSession, principal: Writer) -> Customer:
    """Create or update by external_id (else email, else phone). 201 when created, 200 otherwise."""
    outcome, customer = service.upsert_customer(
        session, principal.workspace_id, body, actor=principal.actor, require_attributes=True
    )
    response.status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    response.headers["Upsert-Result"] = outcome
    return customer


@router.post("/customers/batch", response_model=BatchResult[CustomerOut])
def upsert_customers(body: CustomerBatch, session: DbSession, principal: Writer) -> BatchResult[CustomerOut]:
    """Up to 1,000 upserts; each item succeeds or fails on its own and is reported with its index."""

    def apply(s: Session, item: CustomerUpsert) -> tuple[Any, CustomerOut]:
        outcome, customer = service.upsert_customer(
            s, principal.workspace_id, item, actor=principal.actor, require_attributes=True
        )
        return outcome, CustomerOut.model_validate(customer)

    return run_batch(session, body.items, CustomerUpsert, apply)


@router.get("/customers", response_model=Page[CustomerOut])
def list_customers(
    *,
    session: DbSession,
    principal: Reader,
    q: Annotated[str | None, Query(max_length=200, description="email, name, external id or any identity")] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    stage: Stage | None = None,
    include_merged: bool = False,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> Page[CustomerOut]:
    stmt = CustomerRepository(session, principal.workspace_id).search(
        q=q, identity_values=service.search_identity_values(q) if q else (), tag=tag,
        stage=stage.value if stage else None, include_merged=include_merged,
    )
    rows, next_cursor = paginate_by_id(session, stmt, Customer.id, cursor=cursor, limit=limit)
    return Page(items=[CustomerOut.model_validate(c) for c in rows], next_cursor=next_cursor)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: int, session: DbSession, principal: Reader) -> Customer:
    return service.get_customer(session, principal.workspace_id, customer_id)


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(customer_id: int, body: CustomerUpdate, session: DbSession, principal: Writer) -> Customer:
    return service.update_customer(session, principal.workspace_id, customer_id, body, actor=principal.actor)


# ---- identities and merge --------------------------------------------------------------------------
@router.get("/customers/{customer_id}/identities", response_model=list[IdentityOut])
def list_identities(customer_id: int, session: DbSession, principal: Reader) -> list[IdentityOut]:
    identities = service.list_identities(session, principal.workspace_id, customer_id)
    return [IdentityOut.model_validate(i) for i in identities]


@router.post("/customers/{customer_id}/identities", response_model=IdentityOut, status_code=status.HTTP_201_CREATED)
def add_identity(
    customer_id: int, body: IdentityCreate, response: Response, session: DbSession, principal: Writer
) -> IdentityOut:
    created, identity = service.add_identity(session, principal.workspace_id, customer_id, body, actor=principal.actor)
    if not created:
        response.status_code = status.HTTP_200_OK
    return IdentityOut.model_validate(identity)


@router.delete("/customers/{customer_id}/identities/{identity_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_identity(customer_id: int, identity_id: int, session: DbSession, principal: Writer) -> Response:
    service.remove_identity(session, principal.workspace_id, customer_id, identity_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/customers/{customer_id}/merge", response_model=MergeResult)
def merge_customers(customer_id: int, body: MergeRequest, session: DbSession, principal: Writer) -> MergeResult:
    """Merge ``duplicate_id`` into this customer: identities, orders, events, consents... move here."""
    survivor, moved = merge.merge_customers(
        session, principal.workspace_id, customer_id, body.duplicate_id, actor=principal.actor
    )
    return MergeResult(survivor=CustomerOut.model_validate(survivor), duplicate_id=body.duplicate_id, moved=moved)


# ---- timeline and lifecycle ------------------------------------------------------------------------
@router.get("/customers/{customer_id}/timeline", response_model=Page[timeline.TimelineItem])
def customer_timeline(
    customer_id: int,
    session: DbSession,
    principal: Reader,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> Page[timeline.TimelineItem]:
    items, next_cursor = timeline.customer_timeline(
        session, principal.workspace_id, customer_id, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)


def _lifecycle_out(session: Session, workspace_id: int, customer: Customer) -> LifecycleOut:
    rows = lifecycle.history(session, workspace_id, customer.id)
    return LifecycleOut(
        customer_id=customer.id, stage=customer.lifecycle_stage,
        history=[StageHistoryOut.model_validate(h) for h in rows],
    )


@router.get("/customers/{customer_id}/lifecycle", response_model=LifecycleOut)
def customer_lifecycle(customer_id: int, session: DbSession, principal: Reader) -> LifecycleOut:
    customer = service.get_customer(session, principal.workspace_id, customer_id)
    return _lifecycle_out(session, principal.workspace_id, customer)


@router.post("/customers/{customer_id}/lifecycle/recompute", response_model=LifecycleOut)
def recompute_lifecycle(customer_id: int, session: DbSession, principal: Writer) -> LifecycleOut:
    """Re-evaluate the stage now (the daily job and order ingestion do this on their own)."""
    customer = lifecycle.recompute_one(session, principal.workspace_id, customer_id)
    return _lifecycle_out(session, principal.workspace_id, customer)


# ---- GDPR ------------------------------------------------------------------------------------------
@router.get("/customers/{customer_id}/export", tags=["gdpr"])
def export_customer(customer_id: int, session: DbSession, principal: Reader) -> JSONResponse:
    """Everything about the customer as one JSON document (data subject access request)."""
    document = gdpr.export_customer(session, principal.workspace_id, customer_id)
    return JSONResponse(
        document, headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'}
    )


@router.post("/customers/{customer_id}/erase", response_model=CustomerOut, tags=["gdpr"])
def erase_customer(customer_id: int, session: DbSession, principal: Eraser) -> Customer:
    """Erase the customer's personal data (right to erasure). Totals, evidence and the audit trail stay."""
    return gdpr.erase_customer(session, principal.workspace_id, customer_id, actor=principal.actor)


router.include_router(consent_router)
router.include_router(definition_router)
