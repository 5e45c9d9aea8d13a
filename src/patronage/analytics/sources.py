"""Loyalty data analytics reads from other domains: members (ledger + tiers), redemptions (rewards).

* members: a *member* is a customer with a loyalty point account (ledger ``point_accounts``); they
  joined when the account was opened. Their tier is the effective tier of ``tier_memberships``
  (NULL when the workspace runs no tier programme).
* redemptions: rewards redeemed and still issued (``reward_redemptions``), valued at the points spent
  times the workspace's ``cost_per_point`` (ledger ``loyalty_settings``; 0.01 when unset) -- what the
  redemption costs the business whatever the reward's kind.

Each function returns a Core SELECT with the column labels extract.py expects; a domain missing from
this installation yields an empty SELECT, so analytics keep working without it.
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, cast, func, literal, null, select
from sqlalchemy.types import Float

from patronage.segments.models import SegmentMembership

DEFAULT_COST_PER_POINT = Decimal("0.01")
AnySelect = Select[*tuple[Any, ...]]


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        return False
    return True


def available(name: str) -> bool:
    return _has("patronage.ledger.models") if name == "members" else _has("patronage.rewards.models")


def _empty(**columns: Any) -> AnySelect:
    return select(*(value.label(name) for name, value in columns.items())).where(literal(False))


def members(workspace_id: int) -> AnySelect:
    if not available("members"):
        return _empty(customer_id=literal(0), joined_at=null(), tier=null())
    from patronage.ledger.models import PointAccount

    if not _has("patronage.tiers.models"):
        return select(
            PointAccount.customer_id, PointAccount.created_at.label("joined_at"), null().label("tier")
        ).where(PointAccount.workspace_id == workspace_id)
    from patronage.tiers.models import Tier, TierMembership

    return (
        select(PointAccount.customer_id, PointAccount.created_at.label("joined_at"), Tier.name.label("tier"))
        .select_from(PointAccount)
        .outerjoin(
            TierMembership,
            and_(TierMembership.workspace_id == workspace_id, TierMembership.customer_id == PointAccount.customer_id),
        )
        .outerjoin(Tier, Tier.id == TierMembership.tier_id)
        .where(PointAccount.workspace_id == workspace_id)
    )


def redemptions(workspace_id: int) -> AnySelect:
    if not available("redemptions"):
        return _empty(id=literal(0), customer_id=literal(0), redeemed_at=null(), value=literal(0.0))
    from patronage.rewards.models import Redemption

    cost = _cost_per_point_subquery(workspace_id)
    return select(
        Redemption.id, Redemption.customer_id, Redemption.redeemed_at,
        (cast(Redemption.points, Float) * cost).label("value"),
    ).where(Redemption.workspace_id == workspace_id, Redemption.status == "issued")


def _cost_per_point_subquery(workspace_id: int) -> Any:
    try:
        from patronage.ledger.models import LoyaltySettings
    except ModuleNotFoundError:
        return literal(float(DEFAULT_COST_PER_POINT))
    configured = (
        select(cast(LoyaltySettings.cost_per_point, Float))
        .where(LoyaltySettings.workspace_id == workspace_id)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(configured, float(DEFAULT_COST_PER_POINT))


def segment_members(workspace_id: int) -> AnySelect:
    m = SegmentMembership
    return select(m.segment_id, m.customer_id).where(m.workspace_id == workspace_id)
