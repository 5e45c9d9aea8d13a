"""Rewards in the customers domain: the timeline (redemptions), GDPR export and erasure, and merges."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.activity_repository import TimelineKey
from patronage.customers.gdpr import register_eraser, register_exporter
from patronage.customers.merge import register_customer_table
from patronage.customers.timeline import TimelineItem, register_source
from patronage.rewards import repository as repo
from patronage.rewards.models import Coupon, CouponUse, Fulfilment, Redemption

KIND = repo.TIMELINE_KIND


def timeline_items(
    session: Session, workspace_id: int, customer_id: int, before: TimelineKey | None, limit: int
) -> list[TimelineItem]:
    return [
        TimelineItem(at=r.redeemed_at, kind=KIND, id=r.id, title=f"Redeemed {name} ({r.points} points)",
                     data={"reward_id": r.reward_id, "points": r.points, "status": r.status,
                           "source_type": r.source_type})
        for r, name in repo.RedemptionRepository(session, workspace_id).before(customer_id, before, limit)
    ]


def export_customer(session: Session, workspace_id: int, customer_id: int) -> dict[str, Any]:
    def rows(stmt: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{f: getattr(row, f) for f in fields} for row in session.scalars(stmt)]

    return {
        "redemptions": rows(repo.RedemptionRepository(session, workspace_id).listing(customer_id=customer_id),
                            ("id", "reward_id", "points", "status", "source_type", "redeemed_at", "cancelled_at")),
        "coupons": rows(repo.CouponRepository(session, workspace_id).listing(customer_id=customer_id),
                        ("code", "discount_kind", "value", "status", "used_count", "expires_at")),
        "fulfilments": rows(repo.FulfilmentRepository(session, workspace_id).listing(customer_id=customer_id),
                            ("id", "kind", "status", "details", "fulfilled_at")),
    }


def erase_customer(session: Session, workspace_id: int, customer_id: int) -> None:
    repo.FulfilmentRepository(session, workspace_id).scrub(customer_id)


def register() -> None:
    register_source(KIND, timeline_items)
    register_exporter("rewards", export_customer)
    register_eraser("rewards", erase_customer)
    for column in (Redemption.customer_id, Coupon.customer_id, CouponUse.customer_id, Fulfilment.customer_id):
        register_customer_table(column)
