"""``patronage doctor`` checks for referrals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.doctor import Check, Finding
from patronage.referrals.models import Referral


def check_overdue_rewards(session: Session) -> list[Finding]:
    """Converted referrals whose reward is more than a day overdue: is the worker running?"""
    overdue = session.scalars(
        select(Referral.id).where(Referral.status == "converted",
                                  Referral.reward_due_at < utcnow() - timedelta(days=1)).limit(100)
    ).all()
    if overdue:
        return [Finding("referrals.overdue", "warning",
                        f"{len(overdue)} referrer reward(s) overdue by more than a day: {overdue[:5]}")]
    return [Finding("referrals.overdue", "ok", "no referrer reward is overdue")]


CHECKS: Sequence[Check] = (check_overdue_rewards,)
