"""``patronage doctor`` checks for tiers: memberships agree with their history, and history is a chain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.kit.doctor import Check, Finding
from patronage.tiers.models import TierHistory
from patronage.tiers.repository import history_mismatches

SHOW = 5


def check_membership_history(session: Session) -> list[Finding]:
    """Each membership's effective tier is the tier its last history row entered."""
    bad = history_mismatches(session)
    if bad:
        sample = ", ".join(f"ws {w} customer {c}: tier {t} vs history {h}" for w, c, t, h in bad[:SHOW])
        return [Finding("tiers.history", "error", f"{len(bad)} membership(s) disagree with history: {sample}")]
    return [Finding("tiers.history", "ok", "every membership matches its latest history row")]


def check_history_chain(session: Session) -> list[Finding]:
    """Each history row leaves the tier the previous row (same customer) entered."""
    previous = func.lag(TierHistory.to_tier_id).over(
        partition_by=(TierHistory.workspace_id, TierHistory.customer_id), order_by=TierHistory.id
    )
    rows = select(TierHistory.id, TierHistory.from_tier_id, previous.label("prev"),
                  func.row_number().over(partition_by=(TierHistory.workspace_id, TierHistory.customer_id),
                                         order_by=TierHistory.id).label("n")).subquery()
    broken = session.scalars(
        select(rows.c.id).where(rows.c.n > 1, rows.c.from_tier_id.is_distinct_from(rows.c.prev)).limit(100)
    ).all()
    if broken:
        sample = ", ".join(str(b) for b in broken[:SHOW])
        return [Finding("tiers.history_chain", "error", f"{len(broken)} history row(s) break the chain: {sample}")]
    return [Finding("tiers.history_chain", "ok", "tier history rows chain from one tier to the next")]


CHECKS: Sequence[Check] = (check_membership_history, check_history_chain)
