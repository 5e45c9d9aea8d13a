"""Tier program configuration and reads. Qualification (upgrades, reviews, overrides) is in qualification.py.

Public for other domains: ``earning_multiplier`` (the earning engine), ``effective_tier_id`` (rewards
availability), ``customer_tier`` (summaries) and ``simulate_tiers`` (re-exported from rules for the backtest).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound, field_error
from patronage.tiers import repository as repo
from patronage.tiers.models import Tier, TierMembership, TierProgram
from patronage.tiers.rules import (
    DowngradePolicy,
    Ladder,
    Metric,
    Progress,
    Window,
    current_window_start,
    progress,
    simulate_tiers,
)
from patronage.tiers.schemas import TierCreate, TierProgramIn, TierUpdate

__all__ = [
    "ProgramSettings", "create_tier", "customer_tier", "delete_tier", "earning_multiplier", "effective_tier_id",
    "get_tier", "list_tiers", "program", "simulate_tiers", "tier_counts", "update_program", "update_tier",
]


@dataclass(frozen=True)
class ProgramSettings:
    metric: Metric
    window: Window
    grace_days: int
    downgrade_policy: DowngradePolicy
    tz: ZoneInfo
    currency: str


def program(session: Session, workspace_id: int) -> ProgramSettings:
    row = repo.ProgramRepository(session, workspace_id).with_workspace()
    tz = ZoneInfo(row.timezone if row else "UTC")
    currency = row.currency if row else "USD"
    if row is None or row.metric is None:
        defaults = TierProgramIn()
        return ProgramSettings(defaults.metric, defaults.window, defaults.grace_days, defaults.downgrade_policy,
                               tz, currency)
    return ProgramSettings(Metric(row.metric), Window(row.window), row.grace_days,
                           DowngradePolicy(row.downgrade_policy), tz, currency)


def update_program(session: Session, workspace_id: int, data: TierProgramIn, *, actor: str) -> TierProgram:
    programs = repo.ProgramRepository(session, workspace_id)
    row = programs.current()
    values = data.model_dump(mode="json")
    if row is None:
        row = programs.new(**values)
    else:
        for field, value in values.items():
            setattr(row, field, value)
        session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="tiers.program_updated",
          subject_type="tier_program", subject_id=row.id, data=values)
    return row


# ---- tiers -----------------------------------------------------------------------------------------
def list_tiers(session: Session, workspace_id: int) -> list[Tier]:
    return repo.TierRepository(session, workspace_id).list()


def get_tier(session: Session, workspace_id: int, tier_id: int) -> Tier:
    return repo.TierRepository(session, workspace_id).get_or_404(tier_id)


def create_tier(session: Session, workspace_id: int, data: TierCreate, *, actor: str) -> Tier:
    tiers = repo.TierRepository(session, workspace_id)
    if tiers.by_name(data.name) is not None:
        raise Conflict(f"a tier named {data.name!r} exists", reason="tier_name_taken")
    tier = tiers.new(**data.model_dump())
    audit(session, workspace_id=workspace_id, actor=actor, action="tier.created", subject_type="tier",
          subject_id=tier.id, data=data.model_dump(mode="json"))
    return tier


def update_tier(session: Session, workspace_id: int, tier_id: int, data: TierUpdate, *, actor: str) -> Tier:
    """Edits apply from now on: members keep their tier until its next review (see docs/tiers.md)."""
    tiers = repo.TierRepository(session, workspace_id)
    tier = tiers.get_or_404(tier_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] != tier.name and tiers.by_name(changes["name"]) is not None:
        raise Conflict(f"a tier named {changes['name']!r} exists", reason="tier_name_taken")
    for field, value in changes.items():
        if value is None and field != "color":
            raise field_error(field, "must not be null")
        setattr(tier, field, value)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="tier.updated", subject_type="tier",
          subject_id=tier.id, data=data.model_dump(mode="json", exclude_unset=True))
    return tier


def delete_tier(session: Session, workspace_id: int, tier_id: int, *, actor: str) -> None:
    tiers = repo.TierRepository(session, workspace_id)
    tier = tiers.get_or_404(tier_id, for_update=True)
    if tiers.in_use(tier_id):
        raise Conflict("this tier has (or had) members; it cannot be deleted", reason="tier_in_use")
    session.delete(tier)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="tier.deleted", subject_type="tier",
          subject_id=tier_id, data={"name": tier.name})


# ---- reads for other domains ----------------------------------------------------------------------------
def effective_tier_id(session: Session, workspace_id: int, customer_id: int) -> int | None:
    """The tier the customer holds now: their membership's, else the ladder's base tier (or None)."""
    membership = repo.MembershipRepository(session, workspace_id).for_customer(customer_id)
    if membership is not None:
        return membership.tier_id
    base = repo.TierRepository(session, workspace_id).ladder().base()
    return base.id if base else None


def earning_multiplier(session: Session, workspace_id: int, customer_id: int) -> Decimal:
    """The earning multiplier of the customer's current tier (1 without a tier)."""
    tier_id = effective_tier_id(session, workspace_id, customer_id)
    if tier_id is None:
        return Decimal(1)
    tier = repo.TierRepository(session, workspace_id).get(tier_id)
    return Decimal(tier.earning_multiplier) if tier is not None else Decimal(1)


@dataclass(frozen=True)
class CustomerTier:
    customer_id: int
    tier: Tier | None
    membership: TierMembership | None
    progress: Progress
    settings: ProgramSettings
    ladder: Ladder


def customer_tier(session: Session, workspace_id: int, customer_id: int) -> CustomerTier:
    if not repo.customer_exists(session, workspace_id, customer_id):
        raise NotFound(f"customer {customer_id} not found")
    settings = program(session, workspace_id)
    tiers = repo.TierRepository(session, workspace_id)
    ladder = tiers.ladder()
    membership = repo.MembershipRepository(session, workspace_id).for_customer(customer_id)
    now = utcnow()
    value = repo.CreditRepository(session, workspace_id).metric(
        customer_id, settings.metric, current_window_start(settings.window, now, settings.tz), None
    )
    if membership is not None:
        tier_id = membership.tier_id
        keep_by = membership.downgrade_at or membership.review_at
    else:
        base = ladder.base()
        tier_id, keep_by = (base.id if base else None), None
    tier = tiers.get(tier_id) if tier_id is not None else None
    return CustomerTier(customer_id, tier, membership, progress(ladder, settings.metric, tier_id, value,
                                                                review_at=keep_by), settings, ladder)


def tier_counts(session: Session, workspace_id: int) -> list[tuple[Tier | None, int]]:
    """Customers per effective tier; customers without a membership row hold the base tier."""
    tiers = repo.TierRepository(session, workspace_id)
    ladder = tiers.ladder()
    counts = repo.MembershipRepository(session, workspace_id).counts()
    with_row = sum(counts.values())
    base = ladder.base()
    base_id = base.id if base else None
    counts[base_id] = counts.get(base_id, 0) + max(0, repo.customer_count(session, workspace_id) - with_row)
    by_id = {t.id: t for t in tiers.list()}
    rows: list[tuple[Tier | None, int]] = [(None, counts.get(None, 0))] if None in counts else []
    rows += [(by_id[t.id], counts.get(t.id, 0)) for t in ladder.tiers]
    return rows
