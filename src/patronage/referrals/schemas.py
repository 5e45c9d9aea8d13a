"""Request and response bodies of the referral endpoints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from patronage.kit.schemas import Input, Output


class ReferralProgramIn(Input):
    active: bool = True
    welcome_trigger: Literal["signup", "first_order"] = "first_order"
    welcome_points: int = Field(default=0, ge=0, le=10_000_000)
    welcome_reward_id: int | None = None
    referrer_points: int = Field(default=0, ge=0, le=10_000_000)
    referrer_reward_id: int | None = None
    min_order_amount: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    max_per_day: int | None = Field(default=5, ge=1, le=10_000,
                                     description="referrals per referrer per day before holding")
    max_per_week: int | None = Field(default=20, ge=1, le=100_000)
    hold_existing_customers: bool = Field(default=True, description="hold referrals of customers who had ordered")
    signup_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://[^\s]+$",
                                   description="where the referral landing page sends the friend (ref=<code> added)")


class ReferralProgramOut(Output):
    active: bool
    welcome_trigger: str
    welcome_points: int
    welcome_reward_id: int | None
    referrer_points: int
    referrer_reward_id: int | None
    min_order_amount: Decimal | None
    max_per_day: int | None
    max_per_week: int | None
    hold_existing_customers: bool
    signup_url: str | None
    return_window_days: int = Field(description="from the points program: the referrer is rewarded this long "
                                                "after the referred customer's first order")


class ReferralCodeIn(Input):
    ip: str | None = Field(default=None, max_length=64, description="the referrer's, for the self-referral check")
    device_id: str | None = Field(default=None, max_length=200)


class ReferralCodeOut(Output):
    customer_id: int
    code: str
    link: str
    invites_sent: int
    clicks: int


class InvitesIn(Input):
    count: int = Field(default=1, ge=1, le=1000)


class ReferralCreate(Input):
    code: str = Field(min_length=1, max_length=40)
    referred_customer_id: int
    ip: str | None = Field(default=None, max_length=64, description="the referred customer's, at signup")
    device_id: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)


class ReferralOut(Output):
    id: int
    referrer_id: int
    referred_id: int
    code: str
    status: str
    hold_reasons: list[str]
    signals: dict[str, Any]
    signed_up_at: datetime
    order_id: int | None
    order_placed_at: datetime | None
    converted_at: datetime | None
    reward_due_at: datetime | None
    welcome_granted_at: datetime | None
    referrer_rewarded_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class DecisionIn(Input):
    note: str = Field(default="", max_length=500)


class ReferralStats(Output):
    invited: int = Field(description="invitations sent")
    clicks: int
    signed_up: int
    converted: int = Field(description="referred customers whose qualifying order arrived")
    rewarded: int
    held: int
    rejected: int
    cancelled: int
    conversion_rate: float | None = Field(description="converted / signed_up (null when none signed up)")


class CustomerReferralOut(Output):
    customer_id: int
    code: ReferralCodeOut | None
    referred_by: int | None = Field(description="the referrer's customer id, when this customer was referred")
    stats: ReferralStats
