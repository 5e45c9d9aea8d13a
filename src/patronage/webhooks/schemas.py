"""Request and response bodies of the webhook endpoints API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, field_validator

from patronage.kit.idempotency import SHOWN_ONCE
from patronage.kit.schemas import Input, Output

# "*" (everything), an exact type ("customer.created") or a prefix wildcard ("customer.*").
EVENT_TYPE_PATTERN = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")
MAX_EVENT_TYPES = 100


def check_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    return value


def check_event_types(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in values:
        value = raw.strip()
        if len(value) > 100 or not EVENT_TYPE_PATTERN.fullmatch(value):
            raise ValueError(f"{raw!r} is not an event type, a 'prefix.*' pattern or '*'")
        if value not in cleaned:
            cleaned.append(value)
    return cleaned


class EndpointCreate(Input):
    url: str = Field(max_length=2000, examples=["https://example.com/hooks/patronage"])
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=MAX_EVENT_TYPES,
        description="Event types to receive: exact types, 'prefix.*' patterns, or '*' for all.",
    )
    active: bool = True

    _url = field_validator("url")(check_url)
    _types = field_validator("event_types")(check_event_types)


class EndpointUpdate(Input):
    """Fields left out stay as they are."""

    url: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=MAX_EVENT_TYPES)
    active: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_event_types(value)


class EndpointOut(Output):
    id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str | None = Field(
        description="Signing secret. Shown only now and on rotation: store it. Null in an idempotent replay "
        "(Idempotent-Replayed: true): secrets are never stored for replays.",
        json_schema_extra=SHOWN_ONCE,
    )


class SecretRotate(Input):
    previous_secret_hours: int = Field(
        default=24, ge=0, le=168,
        description="How long deliveries stay signed with the old secret too, so receivers can switch.",
    )


class SecretOut(BaseModel):
    secret: str | None = Field(
        description="The new signing secret; null in an idempotent replay, which never repeats a secret.",
        json_schema_extra=SHOWN_ONCE,
    )
    previous_secret_expires_at: datetime | None


class TestEventOut(BaseModel):
    event_id: str = Field(description="The id the test delivery carries in Patronage-Event-Id.")


class DeliveryOut(Output):
    id: int
    endpoint_id: int
    event_id: str = Field(validation_alias=AliasChoices("event_id", "event_uid"))
    event_type: str
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    last_status_code: int | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class AttemptOut(Output):
    number: int
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None
    at: datetime


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any] = Field(description="The JSON body sent on every attempt.")
    attempt_log: list[AttemptOut]
