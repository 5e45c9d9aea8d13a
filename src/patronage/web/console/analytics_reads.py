"""Reads the dashboard needs that the domains do not offer yet, built on their repositories.

``results_by_keys`` belongs in analytics/repository.py (``ResultRepository.by_keys``: one query for many
keys); ``liability_summary`` in the liability domain (a cheap, ideally precomputed, headline figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from patronage.analytics.models import AnalyticsRefresh, AnalyticsResult
from patronage.analytics.repository import RefreshRepository, ResultRepository
from patronage.kit.clock import utcnow
from patronage.ledger.program import load_program
from patronage.liability import rules
from patronage.liability.repository import LiabilityRepository


def results_by_keys(session: Session, workspace_id: int, keys: Sequence[str]) -> dict[str, AnalyticsResult]:
    repo = ResultRepository(session, workspace_id)
    rows = session.scalars(repo.select().where(AnalyticsResult.key.in_(list(keys))))
    return {row.key: row for row in rows}


def latest_refresh(session: Session, workspace_id: int) -> AnalyticsRefresh | None:
    return RefreshRepository(session, workspace_id).latest()


@dataclass(frozen=True)
class LiabilitySummary:
    """The dashboard's points liability: outstanding points and their value, without the breakage study."""

    currency: str
    available: int
    pending: int
    outstanding: int
    value: Decimal
    net_value: Decimal
    breakage_rate: Decimal | None
    expiring_30_days: int


def liability_summary(session: Session, workspace_id: int) -> LiabilitySummary:
    """Two aggregate queries over the ledger's cached balances (liability/service.py's full report also
    studies every lot's history for the breakage rate, too slow for a page at a million customers).

    Belongs in the liability domain as a precomputed figure; built here from its repository meanwhile.
    """
    program = load_program(session, workspace_id)
    reports = LiabilityRepository(session, workspace_id)
    totals = reports.account_totals()
    outstanding = max(totals["available"], 0) + totals["pending"]
    gross = rules.value(outstanding, program.cost_per_point)
    return LiabilitySummary(
        currency=program.currency, available=totals["available"], pending=totals["pending"], outstanding=outstanding,
        value=gross, net_value=rules.net_of_breakage(gross, program.breakage_rate),
        breakage_rate=program.breakage_rate, expiring_30_days=reports.open_points_expiring(utcnow(), 30),
    )
