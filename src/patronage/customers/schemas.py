"""Request and response bodies of the customer profile, identity, attribute and settings endpoints."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator

from patronage.customers import normalise
from patronage.customers.attributes import NAME as ATTRIBUTE_NAME
from patronage.customers.attributes import AttributeType
from patronage.customers.lifecycle_rules import LifecycleDefinitions
from patronage.kit.clock import utcnow
from patronage.kit.schemas import Input, Output

IdentityKind = Literal["email", "phone", "external_id", "device_id"]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MAX_TAGS = 50


def _optional(fn: Any, value: str | None) -> str | None:
    return None if value is None else fn(value)


class CustomerFields(Input):
    """The writable profile fields. Omitted fields are left as they are; ``null`` clears a field."""

    email: str | None = Field(None, max_length=320, description="validated and normalised (lower case)")
    phone: str | None = Field(
        None, max_length=40,
        description="stored as E.164; numbers without +country are read in the customer's country, "
        "else the workspace's default country",
    )
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    birthday: date | None = None
    locale: str | None = Field(None, max_length=16, description="BCP 47, e.g. en, pt-BR")
    timezone: str | None = Field(None, max_length=64, description="IANA, e.g. Europe/Berlin")
    country: str | None = Field(None, max_length=2, description="ISO 3166-1 alpha-2")
    acquisition_source: str | None = Field(None, max_length=100)
    acquisition_channel: str | None = Field(None, max_length=50)
    tags: list[Tag] | None = Field(None, max_length=MAX_TAGS, description="replaces the profile's tags")
    attributes: dict[str, Any] | None = Field(
        None, description="custom attributes, merged key by key; a null value removes one"
    )
    signed_up_at: AwareDatetime | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _optional(normalise.normalise_email, value)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return _optional(normalise.normalise_locale, value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _optional(normalise.normalise_timezone, value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return _optional(normalise.normalise_country, value)

    @field_validator("birthday")
    @classmethod
    def _birthday(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= utcnow().date():
            raise ValueError("must be a date between 1900-01-01 and today")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))

    @field_validator("first_name", "last_name", "acquisition_source", "acquisition_channel", "phone")
    @classmethod
    def _blank_is_null(cls, value: str | None) -> str | None:
        return value or None


class CustomerUpsert(CustomerFields):
    """Create or update by ``external_id`` (else by ``email``, else by ``phone``)."""

    external_id: str | None = Field(None, min_length=1, max_length=200, description="the shop's customer id")


class CustomerUpdate(CustomerFields):
    external_id: str | None = Field(None, min_length=1, max_length=200)


class CustomerOut(Output):
    id: int
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    birthday: date | None
    locale: str | None
    timezone: str | None
    country: str | None
    acquisition_source: str | None
    acquisition_channel: str | None
    tags: list[str]
    attributes: dict[str, Any]
    signed_up_at: datetime | None
    orders_count: int
    total_spent: Decimal
    first_order_at: datetime | None
    last_order_at: datetime | None
    lifecycle_stage: str
    merged_into_id: int | None
    erased_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CustomerBatch(Input):
    items: list[Any] = Field(description="up to 1,000 customer upserts; each is validated on its own")


# ---- identities ------------------------------------------------------------------------------------
class IdentityCreate(Input):
    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)


class IdentityOut(Output):
    id: int
    customer_id: int
    kind: str
    value: str
    created_at: datetime


class MergeRequest(Input):
    duplicate_id: int = Field(description="the profile to merge into this one; it points here afterwards")


class MergeResult(BaseModel):
    survivor: CustomerOut
    duplicate_id: int
    moved: dict[str, int] = Field(description="rows moved per customer-owned table")


# ---- custom attribute definitions ------------------------------------------------------------------
class AttributeDefinitionCreate(Input):
    name: str = Field(min_length=1, max_length=64, description="lower_snake_case")
    type: AttributeType
    allowed_values: list[str] = Field(default_factory=list, max_length=500, description="enum only")
    required: bool = False
    description: str = Field("", max_length=500)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ATTRIBUTE_NAME.fullmatch(value):
            raise ValueError("lower-case letters, digits and underscores, starting with a letter")
        return value


class AttributeDefinitionUpdate(Input):
    allowed_values: list[str] | None = Field(None, max_length=500)
    required: bool | None = None
    description: str | None = Field(None, max_length=500)


class AttributeDefinitionOut(Output):
    id: int
    name: str
    type: AttributeType
    allowed_values: list[str]
    required: bool
    description: str
    created_at: datetime


# ---- workspace settings and lifecycle --------------------------------------------------------------
class CustomerSettingsUpdate(Input):
    default_country: str | None = Field(None, description="region for phone numbers without +country")
    lifecycle: dict[str, Any] | None = Field(
        None, description="lifecycle thresholds to override (merged with earlier overrides; null resets one)"
    )

    @field_validator("default_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return _optional(normalise.normalise_country, value)


class CustomerSettingsOut(BaseModel):
    default_country: str | None
    lifecycle: LifecycleDefinitions
    lifecycle_overrides: dict[str, Any]


class StageHistoryOut(Output):
    id: int
    stage: str
    previous_stage: str | None
    entered_at: datetime
    exited_at: datetime | None
    reason: dict[str, Any]


class LifecycleOut(BaseModel):
    customer_id: int
    stage: str
    history: list[StageHistoryOut]
