"""Request and response bodies of the consent endpoints."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, IPvAnyAddress, field_validator, model_validator

from patronage.customers.consent_rules import Channel
from patronage.kit.idempotency import SHOWN_ONCE
from patronage.kit.schemas import Input, Output

TOPIC_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_topic_key(value: str) -> str:
    if not TOPIC_KEY.fullmatch(value):
        raise ValueError("lower-case letters, digits, '_', '.', '-'; at most 64 characters")
    return value


class ConsentDecisionIn(Input):
    """A customer's decision about one channel (and optionally one topic on it)."""

    channel: Channel
    topic: str | None = Field(None, description="a consent topic key; omit for the channel as a whole")
    status: Literal["granted", "withdrawn"]
    double_opt_in: bool = Field(
        False, description="record the grant as pending and return a confirmation token to send the customer"
    )
    source: str = Field(min_length=1, max_length=100, description="where it was given: checkout, signup_form...")
    text: str | None = Field(None, max_length=10_000, description="the wording the customer agreed to")
    text_version: str | None = Field(None, max_length=100)
    ip: IPvAnyAddress | None = Field(None, description="the customer's IP address when deciding")
    user_agent: str | None = Field(None, max_length=500)
    occurred_at: AwareDatetime | None = Field(None, description="when the customer decided; default now")

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else check_topic_key(value)

    @model_validator(mode="after")
    def _double_opt_in_grants_only(self) -> ConsentDecisionIn:
        if self.double_opt_in and self.status != "granted":
            raise ValueError("double_opt_in applies to a grant only")
        return self


class ConsentConfirm(Input):
    token: str = Field(min_length=10, max_length=200)
    ip: IPvAnyAddress | None = None
    user_agent: str | None = Field(None, max_length=500)
    occurred_at: AwareDatetime | None = None


class ConsentEvidenceOut(Output):
    id: int
    customer_id: int
    channel: str
    topic: str | None
    status: str
    source: str
    text: str | None
    text_version: str | None
    ip: str | None
    user_agent: str | None
    occurred_at: datetime
    created_at: datetime
    actor: str
    confirmation_expires_at: datetime | None
    confirms_id: int | None
    pii_erased_at: datetime | None

    @field_validator("topic", mode="before")
    @classmethod
    def _empty_topic(cls, value: str | None) -> str | None:
        return value or None


class ConsentStateOut(Output):
    channel: str
    topic: str | None
    status: str
    occurred_at: datetime
    evidence_id: int

    @field_validator("topic", mode="before")
    @classmethod
    def _empty_topic(cls, value: str | None) -> str | None:
        return value or None


class ConsentOverview(BaseModel):
    customer_id: int
    consents: list[ConsentStateOut]
    can_message: dict[str, bool] = Field(description="per channel, for messages not tied to a topic")


class ConsentDecisionOut(BaseModel):
    evidence: ConsentEvidenceOut
    state: ConsentStateOut | None = Field(description="the current decision after this one")
    confirmation_token: str | None = Field(
        None, description="double opt-in only: send it to the customer; shown once, never stored in clear "
        "(null in an idempotent replay)", json_schema_extra=SHOWN_ONCE,
    )


class ConsentTopicCreate(Input):
    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=1000)

    _key = field_validator("key")(check_topic_key)


class ConsentTopicUpdate(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=1000)


class ConsentTopicOut(Output):
    id: int
    key: str
    name: str
    description: str
    created_at: datetime
