"""HTTP routes for behavioural events and event types. Translation only (rules in behaviour.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.orm import Session

from patronage.events import behaviour
from patronage.events.behaviour_schemas import EventIn, EventOut, EventTypeIn, EventTypeOut
from patronage.events.models import BehaviourEvent
from patronage.events.repository import BehaviourEventRepository
from patronage.events.schemas import BatchIn, Ingested, Outcome
from patronage.kit.batch import BatchResult, run_batch
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page, paginate_by_id
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute)
DbSession = Annotated[Session, Depends(request_session)]
Writer = Annotated[Principal, Depends(require(Permission.EVENTS_WRITE))]
Reader = Annotated[Principal, Depends(require(Permission.CUSTOMERS_READ))]


@router.post("/events", response_model=Ingested[EventOut], tags=["events"], responses={201: {"description": "created"}})
def record_event(body: EventIn, response: Response, session: DbSession, principal: Writer) -> Ingested[EventOut]:
    outcome, event = behaviour.record_behaviour_event(session, principal.workspace_id, body, actor=principal.actor)
    response.status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    return Ingested(status=outcome, result=EventOut.model_validate(event))


@router.post("/events/batch", response_model=BatchResult[EventOut], tags=["events"])
def record_events(body: BatchIn, session: DbSession, principal: Writer) -> BatchResult[EventOut]:
    validators = behaviour.Validators(session, principal.workspace_id)

    def apply(s: Session, item: EventIn) -> tuple[Outcome, EventOut]:
        outcome, event = behaviour.record_behaviour_event(
            s, principal.workspace_id, item, actor=principal.actor, validators=validators
        )
        return outcome, EventOut.model_validate(event)

    return run_batch(session, body.items, EventIn, apply)


@router.get("/events", response_model=Page[EventOut], tags=["events"])
def list_events(
    session: DbSession,
    principal: Reader,
    *,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int | None, Query(description="page size, 1-200 (default 50)")] = None,
    customer_id: int | None = None,
    type: str | None = None,
    since: Annotated[datetime | None, Query(description="occurred at or after, timezone-aware")] = None,
) -> Page[EventOut]:
    stmt = BehaviourEventRepository(session, principal.workspace_id).listing(
        customer_id=customer_id, type_=type, since=since
    )
    rows, next_cursor = paginate_by_id(session, stmt, BehaviourEvent.id, cursor=cursor, limit=limit)
    return Page(items=[EventOut.model_validate(e) for e in rows], next_cursor=next_cursor)


@router.get("/events/{external_id:path}", response_model=EventOut, tags=["events"])
def get_event(external_id: str, session: DbSession, principal: Reader) -> BehaviourEvent:
    return behaviour.get_event(session, principal.workspace_id, external_id)


# ---- event types -------------------------------------------------------------------------------------
@router.get("/event-types", response_model=list[EventTypeOut], tags=["events"])
def list_event_types(session: DbSession, principal: Reader) -> list[EventTypeOut]:
    return behaviour.list_event_types(session, principal.workspace_id)


@router.get("/event-types/{name}", response_model=EventTypeOut, tags=["events"])
def get_event_type(name: str, session: DbSession, principal: Reader) -> EventTypeOut:
    return behaviour.get_event_type(session, principal.workspace_id, name)


@router.put("/event-types/{name}", response_model=Ingested[EventTypeOut], tags=["events"])
def put_event_type(
    name: str, body: EventTypeIn, response: Response, session: DbSession, principal: Writer
) -> Ingested[EventTypeOut]:
    outcome, out = behaviour.put_event_type(session, principal.workspace_id, name, body, actor=principal.actor)
    response.status_code = status.HTTP_201_CREATED if outcome == "created" else status.HTTP_200_OK
    return Ingested(status=outcome, result=out)


@router.delete("/event-types/{name}", status_code=status.HTTP_204_NO_CONTENT, tags=["events"])
def delete_event_type(name: str, session: DbSession, principal: Writer) -> Response:
    behaviour.delete_event_type(session, principal.workspace_id, name, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
