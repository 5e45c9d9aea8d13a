"""Tiers in the customers domain: the timeline (tier changes), GDPR export, and merges."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.activity_repository import TimelineKey
from patronage.customers.gdpr import register_exporter
from patronage.customers.merge import register_customer_table, register_merge_handler
from patronage.customers.timeline import TimelineItem, register_source
from patronage.tiers import repository as repo
from patronage.tiers.models import TierCredit

KIND = repo.TIMELINE_KIND


def timeline_items(
    session: Session, workspace_id: int, customer_id: int, before: TimelineKey | None, limit: int
) -> list[TimelineItem]:
    names: dict[int | None, str] = {t.id: t.name for t in repo.TierRepository(session, workspace_id).list()}
    return [
        TimelineItem(at=h.at, kind=KIND, id=h.id,
                     title=f"Tier {names.get(h.from_tier_id, 'none')} -> {names.get(h.to_tier_id, 'none')}",
                     data={"from_tier_id": h.from_tier_id, "to_tier_id": h.to_tier_id, "reason": h.reason})
        for h in repo.HistoryRepository(session, workspace_id).before(customer_id, before, limit)
    ]


def export_customer(session: Session, workspace_id: int, customer_id: int) -> dict[str, Any]:
    m = repo.MembershipRepository(session, workspace_id).for_customer(customer_id)
    history = repo.HistoryRepository(session, workspace_id).for_customer(customer_id, limit=10_000)
    return {
        "membership": None if m is None else {
            "tier_id": m.tier_id, "earned_tier_id": m.earned_tier_id, "entered_at": m.entered_at,
            "review_at": m.review_at, "downgrade_at": m.downgrade_at, "override_tier_id": m.override_tier_id,
            "override_until": m.override_until},
        "history": [{"from_tier_id": h.from_tier_id, "to_tier_id": h.to_tier_id, "reason": h.reason, "at": h.at}
                    for h in reversed(history)],
        "credits": [{"source_type": c.source_type, "source_id": c.source_id, "occurred_at": c.occurred_at,
                     "spend": c.spend, "orders": c.orders, "points": c.points}
                    for c in repo.CreditRepository(session, workspace_id).for_customer(customer_id)],
    }


def merge_customer(session: Session, workspace_id: int, from_customer_id: int, into_customer_id: int, *,
                   actor: str = "system") -> None:
    """Credits moved already (a registered table). A duplicate's membership moves over when the survivor
    has none; otherwise the survivor's stays (the duplicate keeps its history as a record). The survivor
    is then evaluated on the combined credits."""
    from patronage.tiers.qualification import evaluate

    memberships = repo.MembershipRepository(session, workspace_id)
    duplicate = memberships.for_customer(from_customer_id, for_update=True)
    survivor = memberships.for_customer(into_customer_id, for_update=True)
    if duplicate is not None and survivor is None:
        memberships.repoint(from_customer_id, into_customer_id)
        session.expire(duplicate)
    elif duplicate is not None:
        session.delete(duplicate)
        session.flush()
    evaluate(session, workspace_id, into_customer_id, actor=actor)


def register() -> None:
    register_source(KIND, timeline_items)
    register_exporter("tiers", export_customer)
    register_customer_table(TierCredit.customer_id)
    register_merge_handler("tiers", merge_customer)
