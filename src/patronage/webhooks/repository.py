"""Webhook queries, every one scoped to a workspace: another workspace's ids are simply not found."""

from __future__ import annotations

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from patronage.kit.jobs.models import DomainEvent
from patronage.kit.repository import WorkspaceRepository
from patronage.webhooks.errors import DeliveryNotFound, EndpointNotFound
from patronage.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointRepository(WorkspaceRepository[WebhookEndpoint]):
    model = WebhookEndpoint

    def get_or_404(self, id_: int, *, for_update: bool = False) -> WebhookEndpoint:
        endpoint = self.get(id_, for_update=for_update)
        if endpoint is None:
            raise EndpointNotFound(f"webhook endpoint {id_} not found")
        return endpoint

    def all(self) -> list[WebhookEndpoint]:
        return list(self.session.scalars(self.select().order_by(WebhookEndpoint.id)))

    def active(self) -> list[WebhookEndpoint]:
        stmt = self.select().where(WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id)
        return list(self.session.scalars(stmt))


class DeliveryRepository(WorkspaceRepository[WebhookDelivery]):
    model = WebhookDelivery

    def of_endpoint(self, endpoint_id: int, status: str | None = None) -> Select[WebhookDelivery]:
        stmt = self.select().where(WebhookDelivery.endpoint_id == endpoint_id)
        return stmt if status is None else stmt.where(WebhookDelivery.status == status)

    def get_of_endpoint(self, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
        stmt = self.of_endpoint(endpoint_id).where(WebhookDelivery.id == delivery_id)
        delivery = self.session.scalars(stmt).one_or_none()
        if delivery is None:
            raise DeliveryNotFound(f"delivery {delivery_id} of webhook endpoint {endpoint_id} not found")
        return delivery

    def endpoints_with_event(self, event_uid: str) -> set[int]:
        stmt = select(WebhookDelivery.endpoint_id).where(
            WebhookDelivery.workspace_id == self.workspace_id, WebhookDelivery.event_uid == event_uid
        )
        return set(self.session.scalars(stmt))

    def count_attempt(self, delivery_id: int, values: dict[str, object]) -> int | None:
        """Add one to the attempt counter (relatively: never a value read earlier) and set ``values``.

        Returns the new count, the attempt's number; None when the delivery is gone.
        """
        stmt = (
            update(WebhookDelivery)
            .where(WebhookDelivery.workspace_id == self.workspace_id, WebhookDelivery.id == delivery_id)
            .values(attempts=WebhookDelivery.attempts + 1, **values)
            .returning(WebhookDelivery.attempts)
        )
        number: int | None = self.session.execute(stmt).scalar_one_or_none()
        return number


class AttemptRepository(WorkspaceRepository[WebhookAttempt]):
    model = WebhookAttempt

    def of_delivery(self, delivery_id: int) -> list[WebhookAttempt]:
        stmt = self.select().where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id)
        return list(self.session.scalars(stmt))


def get_event(session: Session, workspace_id: int, event_id: int) -> DomainEvent | None:
    stmt = select(DomainEvent).where(DomainEvent.workspace_id == workspace_id, DomainEvent.id == event_id)
    return session.scalars(stmt).one_or_none()
