"""Request and response bodies of the workspace, auth, staff and API key endpoints."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, EmailStr, Field, field_validator

from patronage.kit.idempotency import SHOWN_ONCE
from patronage.kit.schemas import Input, Output
from patronage.workspaces.permissions import Permission, Role

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")
LOCALE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$")


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def check_currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError("must be an ISO 4217 code such as EUR or USD")
    return value


def check_locale(value: str) -> str:
    if not LOCALE.fullmatch(value):
        raise ValueError("must be a BCP 47 language tag such as en, pt-BR or pl")
    return value


class WorkspaceCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=60)
    timezone: str = "UTC"
    currency: str = "USD"
    locale: str = "en"

    _tz = field_validator("timezone")(check_timezone)
    _cur = field_validator("currency")(check_currency)
    _loc = field_validator("locale")(check_locale)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise ValueError("lowercase letters, digits and hyphens; starts and ends with a letter or digit")
        return value


HEX_COLOR = r"^#[0-9a-fA-F]{6}$"


class WorkspaceUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = None
    currency: str | None = None
    locale: str | None = None
    brand_logo_url: str | None = Field(default=None, max_length=500, pattern=r"^(https://|/static/|data:image/)")
    brand_primary_color: str | None = Field(default=None, pattern=HEX_COLOR)
    brand_accent_color: str | None = Field(default=None, pattern=HEX_COLOR)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @field_validator("currency")
    @classmethod
    def _cur(cls, value: str | None) -> str | None:
        return None if value is None else check_currency(value)

    @field_validator("locale")
    @classmethod
    def _loc(cls, value: str | None) -> str | None:
        return None if value is None else check_locale(value)


class WorkspaceOut(Output):
    id: int
    name: str
    slug: str
    timezone: str
    currency: str
    locale: str
    brand_logo_url: str | None
    brand_primary_color: str
    brand_accent_color: str
    created_at: datetime


class LoginRequest(Input):
    # Not EmailStr: sign-in must accept every address an account can have, including the special-use
    # domains of intranets and of the demo (.local, .test), which email-validator rejects.
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    workspace: str | None = Field(default=None, description="Workspace slug; defaults to the first one")


class UserOut(Output):
    id: int
    email: str
    name: str


class SessionOut(Output):
    user: UserOut
    workspace: WorkspaceOut
    role: Role
    permissions: list[str]
    csrf_token: str


class StaffCreate(Input):
    email: EmailStr
    name: str = Field(default="", max_length=200)
    password: str = Field(min_length=10, max_length=1024)
    role: Role


class StaffUpdate(Input):
    role: Role


class StaffOut(Output):
    user_id: int
    email: str
    name: str
    role: Role


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Permission] | None = Field(
        default=None, description="Permissions granted to the key; defaults to a shop-integration set"
    )
    # Aware: a time without an offset is ambiguous, and the database stores UTC (422, not a 500).
    expires_at: AwareDatetime | None = None


class ApiKeyOut(Output):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str | None = Field(
        description="The secret. It is shown only in this response; store it now. Null when the response is an "
        "idempotent replay (Idempotent-Replayed: true): secrets are never stored for replays.",
        json_schema_extra=SHOWN_ONCE,
    )
