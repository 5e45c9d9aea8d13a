"""Outgoing webhooks: endpoints a workspace registers, one delivery per (endpoint, event), its attempts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, UTCDateTime


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not delivered yet; the queue is (re)trying
    SUCCEEDED = "succeeded"  # the receiver answered 2xx
    FAILED = "failed"  # retries exhausted, or the endpoint was disabled


class WebhookEndpoint(WorkspaceScoped):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JSONType, default=list)  # "*" = every event
    # Kept in clear: signing needs it. Shown once on creation and on rotation, never in listings.
    secret: Mapped[str] = mapped_column(String(100))
    # After a rotation deliveries are signed with both secrets until this passes (zero-downtime swap).
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)


class WebhookDelivery(WorkspaceScoped):
    """One event to one endpoint. ``body`` is frozen at fan-out so every attempt sends the same bytes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # One delivery per event and endpoint, whatever the fan-out's retries do.
        Index("uq_webhook_deliveries_endpoint_event", "endpoint_id", "event_uid", unique=True),
        Index("ix_webhook_deliveries_endpoint_log", "endpoint_id", "id"),  # the newest-first log
    )

    endpoint_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_uid: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(WorkspaceScoped):
    """One HTTP request of a delivery, kept for the delivery log."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]  # 1-based, in the order the attempts were made
    status_code: Mapped[int | None]  # None: no HTTP response (timeout, refused, DNS, disabled)
    duration_ms: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)  # the first RESPONSE_BODY_LIMIT bytes
    at: Mapped[datetime] = mapped_column(UTCDateTime)
