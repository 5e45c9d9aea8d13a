"""Webhook rules: endpoints and their secrets, fan-out of events to deliveries, the delivery log.

Never commits: the request or the job boundary does. The HTTP request itself is made by the task
(tasks.py) between two transactions, with what ``prepare_attempt`` read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.jobs import enqueue, record_event
from patronage.kit.jobs.models import DomainEvent
from patronage.kit.pagination import paginate_by_id
from patronage.kit.security import new_token
from patronage.webhooks.errors import EndpointDisabled
from patronage.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from patronage.webhooks.repository import AttemptRepository, DeliveryRepository, EndpointRepository, get_event
from patronage.webhooks.schemas import EndpointCreate, EndpointUpdate
from patronage.webhooks.sender import Outcome, OutgoingRequest
from patronage.webhooks.subscriptions import TEST_EVENT, changed, subscribes
from patronage.workspaces.repository import get_workspace

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that makes leaked secrets recognisable, not one  # nosec B105
DELIVER_TASK = "webhooks.deliver"


# ---- pure rules ------------------------------------------------------------------------------------
def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


def event_body(event: DomainEvent, workspace_slug: str | None) -> str:
    """The JSON sent to receivers. Built once per delivery, so every retry carries the same bytes."""
    created = event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    document = {
        "id": event.uid,
        "type": event.type,
        "created_at": created,
        "workspace": workspace_slug,
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)


def new_secret() -> str:
    return new_token(SECRET_PREFIX, 32)


# ---- endpoints ---------------------------------------------------------------------------------------
def list_endpoints(session: Session, workspace_id: int) -> list[WebhookEndpoint]:
    return EndpointRepository(session, workspace_id).all()


def get_endpoint(session: Session, workspace_id: int, endpoint_id: int) -> WebhookEndpoint:
    return EndpointRepository(session, workspace_id).get_or_404(endpoint_id)


def create_endpoint(session: Session, workspace_id: int, data: EndpointCreate, *, actor: str) -> WebhookEndpoint:
    endpoint = EndpointRepository(session, workspace_id).new(**data.model_dump(), secret=new_secret())
    changed(session)
    audit(session, workspace_id=workspace_id, actor=actor, action="webhook_endpoint.created",
          subject_type="webhook_endpoint", subject_id=endpoint.id, data=data.model_dump())
    return endpoint


def update_endpoint(
    session: Session, workspace_id: int, endpoint_id: int, data: EndpointUpdate, *, actor: str
) -> WebhookEndpoint:
    endpoint = EndpointRepository(session, workspace_id).get_or_404(endpoint_id, for_update=True)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    session.flush()
    changed(session)
    audit(session, workspace_id=workspace_id, actor=actor, action="webhook_endpoint.updated",
          subject_type="webhook_endpoint", subject_id=endpoint.id, data=changes)
    return endpoint


def delete_endpoint(session: Session, workspace_id: int, endpoint_id: int, *, actor: str) -> None:
    """Deletes its deliveries and log too; their waiting jobs find nothing and end quietly."""
    endpoint = EndpointRepository(session, workspace_id).get_or_404(endpoint_id, for_update=True)
    session.delete(endpoint)
    session.flush()
    changed(session)
    audit(session, workspace_id=workspace_id, actor=actor, action="webhook_endpoint.deleted",
          subject_type="webhook_endpoint", subject_id=endpoint_id, data={"url": endpoint.url})


def rotate_secret(
    session: Session, workspace_id: int, endpoint_id: int, *, previous_secret_hours: int, actor: str
) -> WebhookEndpoint:
    endpoint = EndpointRepository(session, workspace_id).get_or_404(endpoint_id, for_update=True)
    if previous_secret_hours > 0:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utcnow() + timedelta(hours=previous_secret_hours)
    else:
        endpoint.previous_secret, endpoint.previous_secret_expires_at = None, None
    endpoint.secret = new_secret()
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="webhook_endpoint.secret_rotated",
          subject_type="webhook_endpoint", subject_id=endpoint.id,
          data={"previous_secret_hours": previous_secret_hours})
    return endpoint


def send_test_event(session: Session, workspace_id: int, endpoint_id: int) -> DomainEvent:
    """Record a ``webhook.test`` event; the fan-out delivers it to this endpoint only."""
    endpoint = EndpointRepository(session, workspace_id).get_or_404(endpoint_id)
    if not endpoint.active:
        raise EndpointDisabled(f"webhook endpoint {endpoint_id} is disabled; enable it to send a test event")
    payload = {"endpoint_id": endpoint.id, "message": "A test event from Patronage."}
    return record_event(session, workspace_id, TEST_EVENT, payload)


# ---- fan-out -----------------------------------------------------------------------------------------
def _targets(session: Session, workspace_id: int, event: DomainEvent) -> list[WebhookEndpoint]:
    endpoints = EndpointRepository(session, workspace_id)
    if event.type == TEST_EVENT:
        endpoint = endpoints.get(int(event.payload.get("endpoint_id", 0)))
        return [endpoint] if endpoint is not None else []
    return [e for e in endpoints.active() if subscribes(e.event_types, event.type)]


def fan_out(session: Session, workspace_id: int, event_id: int) -> list[WebhookDelivery]:
    """One delivery, and one delivery job, per active endpoint subscribed to the event."""
    event = get_event(session, workspace_id, event_id)
    if event is None:
        return []
    targets = _targets(session, workspace_id, event)
    if not targets:
        return []
    deliveries = DeliveryRepository(session, workspace_id)
    already = deliveries.endpoints_with_event(event.uid)  # a replayed fan-out adds nothing
    workspace = get_workspace(session, workspace_id)
    body = event_body(event, workspace.slug if workspace else None)
    created = []
    for endpoint in targets:
        if endpoint.id in already:
            continue
        delivery = deliveries.new(
            endpoint_id=endpoint.id, event_uid=event.uid, event_type=event.type, body=body,
            status=DeliveryStatus.PENDING, attempts=0,
        )
        _enqueue_delivery(session, delivery)
        created.append(delivery)
    return created


def _enqueue_delivery(session: Session, delivery: WebhookDelivery) -> None:
    # One waiting job per delivery: a redelivery while a retry waits brings that retry forward.
    enqueue(
        session, DELIVER_TASK, {"delivery_id": delivery.id}, workspace_id=delivery.workspace_id,
        unique_key=f"{DELIVER_TASK}:{delivery.id}", debounce=timedelta(0),
    )


# ---- delivering --------------------------------------------------------------------------------------
def prepare_attempt(session: Session, workspace_id: int, delivery_id: int) -> OutgoingRequest | None:
    """What to send, or None when there is nothing to send (gone, or endpoint disabled: logged)."""
    delivery = DeliveryRepository(session, workspace_id).get(delivery_id)
    if delivery is None:
        return None
    endpoint = EndpointRepository(session, workspace_id).get(delivery.endpoint_id)
    if endpoint is None:
        return None
    if not endpoint.active:
        skipped = Outcome(None, 0, "not sent: the endpoint is disabled", None)
        record_attempt(session, workspace_id, delivery_id, skipped, final=True)
        return None
    return OutgoingRequest(
        url=endpoint.url,
        secrets=signing_secrets(endpoint, utcnow()),
        event_uid=delivery.event_uid,
        event_type=delivery.event_type,
        delivery_id=delivery.id,
        body=delivery.body,
    )


def record_attempt(
    session: Session, workspace_id: int, delivery_id: int, outcome: Outcome, *, final: bool
) -> None:
    """Log one attempt and move the delivery's status: succeeded, failed (``final``) or still pending."""
    now = utcnow()
    values: dict[str, object] = {"last_status_code": outcome.status_code, "last_attempt_at": now}
    if outcome.ok:
        values |= {"status": DeliveryStatus.SUCCEEDED, "delivered_at": now}
    else:
        values["status"] = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
    number = DeliveryRepository(session, workspace_id).count_attempt(delivery_id, values)
    if number is None:
        return  # deleted with its endpoint while we were sending
    AttemptRepository(session, workspace_id).new(
        delivery_id=delivery_id, number=number, status_code=outcome.status_code,
        duration_ms=outcome.duration_ms, error=outcome.error, response_body=outcome.response_body, at=now,
    )


# ---- the delivery log --------------------------------------------------------------------------------
def list_deliveries(
    session: Session, workspace_id: int, endpoint_id: int, *, status: str | None, cursor: str | None,
    limit: int | None,
) -> tuple[list[WebhookDelivery], str | None]:
    EndpointRepository(session, workspace_id).get_or_404(endpoint_id)
    stmt = DeliveryRepository(session, workspace_id).of_endpoint(endpoint_id, status)
    return paginate_by_id(session, stmt, WebhookDelivery.id, cursor=cursor, limit=limit)


def get_delivery(
    session: Session, workspace_id: int, endpoint_id: int, delivery_id: int
) -> tuple[WebhookDelivery, list[WebhookAttempt], dict[str, Any]]:
    EndpointRepository(session, workspace_id).get_or_404(endpoint_id)
    delivery = DeliveryRepository(session, workspace_id).get_of_endpoint(endpoint_id, delivery_id)
    attempts = AttemptRepository(session, workspace_id).of_delivery(delivery.id)
    payload: dict[str, Any] = json.loads(delivery.body)
    return delivery, attempts, payload


def redeliver(
    session: Session, workspace_id: int, endpoint_id: int, delivery_id: int, *, actor: str
) -> WebhookDelivery:
    """Send again now, whatever the delivery's status. Receivers de-duplicate on the event id."""
    endpoint = EndpointRepository(session, workspace_id).get_or_404(endpoint_id)
    if not endpoint.active:
        raise EndpointDisabled(f"webhook endpoint {endpoint_id} is disabled; enable it to redeliver")
    delivery = DeliveryRepository(session, workspace_id).get_of_endpoint(endpoint_id, delivery_id)
    delivery.status = DeliveryStatus.PENDING
    session.flush()
    _enqueue_delivery(session, delivery)
    audit(session, workspace_id=workspace_id, actor=actor, action="webhook_delivery.redelivered",
          subject_type="webhook_delivery", subject_id=delivery.id, data={"event_id": delivery.event_uid})
    return delivery
