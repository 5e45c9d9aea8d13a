"""HTTP routes for liability reports: outstanding points and their value, breakage, period statements, and
the precomputed snapshot of the report."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, status
from sqlalchemy.orm import Session

from patronage.kit.errors import NotFound
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.liability import service
from patronage.liability.schemas import (
    BreakageOut,
    BreakageReportOut,
    CohortOut,
    LiabilityOut,
    SnapshotOut,
    StatementOut,
)
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, tags=["reports"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.LOYALTY_READ))]


@router.get("/reports/liability", response_model=LiabilityOut)
def liability(session: DbSession, principal: Reader) -> LiabilityOut:
    return LiabilityOut.model_validate(asdict(service.liability(session, principal.workspace_id)))


@router.get("/reports/liability/snapshot", response_model=SnapshotOut)
def snapshot(session: DbSession, principal: Reader) -> SnapshotOut:
    """The latest precomputed report (every 30 minutes, or on request): cheap at any size, as of ``as_of``."""
    row = service.latest_snapshot(session, principal.workspace_id)
    if row is None:
        raise NotFound("no liability snapshot yet; POST /reports/liability/snapshot computes one")
    return SnapshotOut(day=row.day, as_of=row.as_of, duration_ms=row.duration_ms,
                       report=LiabilityOut.model_validate(row.report))


@router.post("/reports/liability/snapshot", status_code=status.HTTP_202_ACCEPTED)
def request_snapshot(session: DbSession, principal: Reader) -> dict[str, str]:
    """Queue a fresh snapshot; poll GET until its ``as_of`` moves."""
    service.request_snapshot(session, principal.workspace_id)
    return {"status": "queued"}


@router.get("/reports/liability/breakage", response_model=BreakageReportOut)
def breakage(session: DbSession, principal: Reader) -> BreakageReportOut:
    estimate, cohorts = service.breakage_report(session, principal.workspace_id)
    return BreakageReportOut(
        estimate=BreakageOut.model_validate(asdict(estimate)),
        cohorts=[CohortOut(**asdict(c), closed=c.closed()) for c in cohorts],
    )


@router.get("/reports/liability/statement", response_model=StatementOut)
def statement(
    start: date, end: date, session: DbSession, principal: Reader, basis: Literal["booked", "occurred"] = "booked"
) -> StatementOut:
    """Opening, movements (earned, released, redeemed, expired, reversed, adjusted, transferred) and closing
    points for local dates ``start``..``end`` (inclusive), in the workspace's time zone."""
    s = service.statement(session, principal.workspace_id, start=start, end=end, basis=basis)
    return StatementOut(
        start=s.start, end=s.end, basis=s.basis, currency=s.currency, cost_per_point=s.cost_per_point,
        opening=s.opening, movements=s.movements, movements_by_bucket=s.movements_by_bucket, closing=s.closing,
        values=s.values, reconciles=s.reconciliation.reconciles, difference=s.reconciliation.difference,
    )
