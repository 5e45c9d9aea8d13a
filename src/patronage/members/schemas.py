"""Bodies of the member sign-in endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import EmailStr, Field

from patronage.kit.schemas import Input, Output


class MagicLinkRequest(Input):
    email: EmailStr


class MagicLinkAccepted(Output):
    detail: str = "If this email belongs to a member, a sign-in link is on its way."


class MagicLinkExchange(Input):
    token: str = Field(min_length=10, max_length=200)


class MemberSessionOut(Output):
    customer_id: int
    token: str = Field(description="Bearer token for shop apps (also set as the portal cookie)")
    csrf_token: str
    expires_at: datetime
