"""Assembling a customer's tier view (used by the tier routes and the loyalty summary)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.tiers import service
from patronage.tiers.repository import HistoryRepository
from patronage.tiers.rules import describe_gap
from patronage.tiers.schemas import CustomerTierOut, OverrideOut, ProgressOut, TierHistoryOut, TierOut, TierRef


def customer_tier_out(session: Session, workspace_id: int, customer_id: int) -> CustomerTierOut:
    state = service.customer_tier(session, workspace_id, customer_id)
    p, m, s = state.progress, state.membership, state.settings
    nxt = state.ladder.get(p.next_tier_id)
    override = None
    if m is not None and m.override_until is not None:
        override = OverrideOut(tier_id=m.override_tier_id, until=m.override_until, reason=m.override_reason)
    history = HistoryRepository(session, workspace_id).for_customer(customer_id)
    return CustomerTierOut(
        customer_id=customer_id,
        tier=TierOut.model_validate(state.tier) if state.tier else None,
        earned_tier_id=m.earned_tier_id if m else (state.tier.id if state.tier else None),
        entered_at=m.entered_at if m else None,
        review_at=m.review_at if m else None,
        downgrade_at=m.downgrade_at if m else None,
        override=override,
        earning_multiplier=state.tier.earning_multiplier if state.tier else 1,
        progress=ProgressOut(
            metric=p.metric, window=s.window, value=p.value,
            next_tier=TierRef(id=nxt.id, name=nxt.name) if nxt else None,
            to_next=p.to_next,
            to_next_text=describe_gap(p.metric, p.to_next, s.currency) if p.to_next is not None else None,
            keep_threshold=p.keep_threshold, to_keep=p.to_keep, keep_by=p.review_at,
        ),
        history=[TierHistoryOut.model_validate(h) for h in history],
    )
