"""HTTP routes for webhook endpoints and their delivery log. Translation only: rules live in service.py."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.orm import Session

from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import MAX_PAGE_SIZE, Page
from patronage.webhooks import service
from patronage.webhooks.models import WebhookEndpoint
from patronage.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    SecretOut,
    SecretRotate,
    TestEventOut,
)
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/webhooks", tags=["webhooks"])
DbSession = Annotated[Session, Depends(request_session)]
Manager = Annotated[Principal, Depends(require(Permission.WEBHOOKS_MANAGE))]
DeliveryStatusFilter = Literal["pending", "succeeded", "failed"]


@router.get("", response_model=list[EndpointOut])
def list_endpoints(session: DbSession, principal: Manager) -> list[WebhookEndpoint]:
    return service.list_endpoints(session, principal.workspace_id)


@router.post("", response_model=EndpointCreated, status_code=status.HTTP_201_CREATED)
def create_endpoint(body: EndpointCreate, session: DbSession, principal: Manager) -> EndpointCreated:
    endpoint = service.create_endpoint(session, principal.workspace_id, body, actor=principal.actor)
    return EndpointCreated(**EndpointOut.model_validate(endpoint).model_dump(), secret=endpoint.secret)


@router.get("/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: int, session: DbSession, principal: Manager) -> WebhookEndpoint:
    return service.get_endpoint(session, principal.workspace_id, endpoint_id)


@router.patch("/{endpoint_id}", response_model=EndpointOut)
def update_endpoint(
    endpoint_id: int, body: EndpointUpdate, session: DbSession, principal: Manager
) -> WebhookEndpoint:
    return service.update_endpoint(session, principal.workspace_id, endpoint_id, body, actor=principal.actor)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_endpoint(endpoint_id: int, session: DbSession, principal: Manager) -> Response:
    service.delete_endpoint(session, principal.workspace_id, endpoint_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/rotate-secret", response_model=SecretOut)
def rotate_secret(
    endpoint_id: int, session: DbSession, principal: Manager, body: SecretRotate | None = None
) -> SecretOut:
    hours = (body or SecretRotate()).previous_secret_hours
    endpoint = service.rotate_secret(
        session, principal.workspace_id, endpoint_id, previous_secret_hours=hours, actor=principal.actor
    )
    return SecretOut(secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at)


@router.post("/{endpoint_id}/test", response_model=TestEventOut, status_code=status.HTTP_202_ACCEPTED)
def send_test_event(endpoint_id: int, session: DbSession, principal: Manager) -> TestEventOut:
    event = service.send_test_event(session, principal.workspace_id, endpoint_id)
    return TestEventOut(event_id=event.uid)


@router.get("/{endpoint_id}/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(
    endpoint_id: int,
    *,
    session: DbSession,
    principal: Manager,
    status: DeliveryStatusFilter | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> Page[DeliveryOut]:
    rows, next_cursor = service.list_deliveries(
        session, principal.workspace_id, endpoint_id, status=status, cursor=cursor, limit=limit
    )
    return Page[DeliveryOut](items=[DeliveryOut.model_validate(d) for d in rows], next_cursor=next_cursor)


@router.get("/{endpoint_id}/deliveries/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(endpoint_id: int, delivery_id: int, session: DbSession, principal: Manager) -> DeliveryDetail:
    delivery, attempts, payload = service.get_delivery(session, principal.workspace_id, endpoint_id, delivery_id)
    return DeliveryDetail(
        **DeliveryOut.model_validate(delivery).model_dump(),
        payload=payload,
        attempt_log=[AttemptOut.model_validate(a) for a in attempts],
    )


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
)
def redeliver(endpoint_id: int, delivery_id: int, session: DbSession, principal: Manager) -> DeliveryOut:
    delivery = service.redeliver(session, principal.workspace_id, endpoint_id, delivery_id, actor=principal.actor)
    return DeliveryOut.model_validate(delivery)
