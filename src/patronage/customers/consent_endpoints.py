"""HTTP routes for consent: record a decision, current state, evidence, double opt-in confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from patronage.customers import consent
from patronage.customers.consent_schemas import (
    ConsentConfirm,
    ConsentDecisionIn,
    ConsentDecisionOut,
    ConsentEvidenceOut,
    ConsentOverview,
    ConsentStateOut,
)
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["consent"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.CUSTOMERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.CUSTOMERS_WRITE))]


@router.get("/customers/{customer_id}/consents", response_model=ConsentOverview)
def current_consents(customer_id: int, session: DbSession, principal: Reader) -> ConsentOverview:
    states = consent.current_states(session, principal.workspace_id, customer_id)
    return ConsentOverview(
        customer_id=customer_id,
        consents=[ConsentStateOut.model_validate(s) for s in states],
        can_message=consent.channel_permissions(states),
    )


@router.post(
    "/customers/{customer_id}/consents", response_model=ConsentDecisionOut, status_code=status.HTTP_201_CREATED
)
def record_consent(
    customer_id: int, body: ConsentDecisionIn, session: DbSession, principal: Writer
) -> ConsentDecisionOut:
    """Append a decision to the evidence. With ``double_opt_in`` the grant stays pending until confirmed."""
    evidence, state, token = consent.record_decision(
        session, principal.workspace_id, customer_id, body, actor=principal.actor
    )
    return ConsentDecisionOut(
        evidence=ConsentEvidenceOut.model_validate(evidence),
        state=ConsentStateOut.model_validate(state) if state is not None else None,
        confirmation_token=token,
    )


@router.get("/customers/{customer_id}/consents/evidence", response_model=Page[ConsentEvidenceOut])
def consent_evidence(
    customer_id: int,
    session: DbSession,
    principal: Reader,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> Page[ConsentEvidenceOut]:
    rows, next_cursor = consent.list_evidence(
        session, principal.workspace_id, customer_id, cursor=cursor, limit=limit
    )
    return Page(items=[ConsentEvidenceOut.model_validate(e) for e in rows], next_cursor=next_cursor)


@router.post("/consents/confirm", response_model=ConsentDecisionOut)
def confirm_consent(body: ConsentConfirm, session: DbSession, principal: Writer) -> ConsentDecisionOut:
    """Double opt-in: the customer followed the confirmation link; the shop relays the token here."""
    evidence, state = consent.confirm(session, principal.workspace_id, body, actor=principal.actor)
    return ConsentDecisionOut(
        evidence=ConsentEvidenceOut.model_validate(evidence),
        state=ConsentStateOut.model_validate(state) if state is not None else None,
    )
