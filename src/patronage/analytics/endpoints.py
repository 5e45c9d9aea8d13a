"""HTTP routes for KPIs, cohorts, lifecycle, funnel, program impact, RFM, goals and refreshes.

Reads come from the precomputed results (one indexed row each), so dashboards answer in milliseconds
whatever the workspace's size. Tables also come as CSV: ``Accept: text/csv`` or ``?format=csv``.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from patronage.analytics import goals, service
from patronage.analytics.kpis import Kpi
from patronage.analytics.repository import GoalRepository
from patronage.analytics.schemas import (
    BreakdownName,
    GoalCreate,
    GoalOut,
    GoalUpdate,
    KpiInfoOut,
    KpiSeriesOut,
    PeriodName,
    RefreshOut,
    RefreshRequest,
)
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/analytics", tags=["analytics"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.ANALYTICS_READ))]
Format = Annotated[Literal["json", "csv"] | None, Query(description="csv for a CSV table")]


def wants_csv(request: Request, fmt: str | None) -> bool:
    return fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))


def csv_response(header: list[str], rows: list[list[Any]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/kpis/catalog", response_model=list[KpiInfoOut])
def kpi_catalog(principal: Reader) -> list[KpiInfoOut]:
    return service.kpi_catalog()


@router.get("/kpis", response_model=KpiSeriesOut, responses={200: {"content": {"text/csv": {}}}})
def kpis(
    request: Request,
    session: DbSession,
    principal: Reader,
    *,
    kpi: Kpi,
    period: PeriodName = "month",
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    breakdown: BreakdownName | None = None,
    format: Format = None,
) -> Any:
    out = service.kpi_series(
        session, principal.workspace_id, kpi=kpi, period=period, breakdown=breakdown, start=start, end=end
    )
    if wants_csv(request, format):
        rows = [
            [s.group, label, start.isoformat(), value, partial]
            for s in out.series
            for label, start, value, partial in zip(out.periods, out.starts, s.values, out.partial, strict=True)
        ]
        return csv_response(["group", "period", "start", kpi.value, "partial"], rows, f"{kpi.value}-{period}.csv")
    return out


@router.get("/cohorts", responses={200: {"content": {"text/csv": {}}}})
def cohorts(
    request: Request,
    session: DbSession,
    principal: Reader,
    *,
    period: Literal["week", "month"] = "month",
    metric: Literal["customers", "revenue"] = "customers",
    mode: Literal["in", "in_or_after"] = "in",
    relative: bool = True,
    format: Format = None,
) -> Any:
    table = service.cohort_table(
        session, principal.workspace_id, period=period, metric=metric, mode=mode, relative=relative
    )
    if wants_csv(request, format):
        width = max((len(c["values"]) for c in table["cohorts"]), default=0)
        rows = [[c["cohort"], c["size"], *c["values"]] for c in table["cohorts"]]
        return csv_response(["cohort", "size", *[f"p{n}" for n in range(width)]], rows,
                            f"cohorts-{period}-{metric}-{mode}.csv")
    return table


@router.get("/lifecycle")
def lifecycle(session: DbSession, principal: Reader, period: PeriodName = "month") -> dict[str, Any]:
    return service.read_result(session, principal.workspace_id, f"lifecycle/{period}").payload


@router.get("/funnel")
def funnel(session: DbSession, principal: Reader) -> dict[str, Any]:
    return service.read_result(session, principal.workspace_id, "funnel").payload


@router.get("/program-impact")
def program_impact(session: DbSession, principal: Reader) -> dict[str, Any]:
    return service.read_result(session, principal.workspace_id, "program_impact").payload


@router.get("/rfm", responses={200: {"content": {"text/csv": {}}}})
def rfm(request: Request, session: DbSession, principal: Reader, format: Format = None) -> Any:
    payload = service.read_result(session, principal.workspace_id, "rfm").payload
    if wants_csv(request, format):
        rows = [[c["r"], c["f"], c["customers"], c["monetary"]] for c in payload["grid"]]
        return csv_response(["r", "f", "customers", "monetary"], rows, "rfm-grid.csv")
    return payload


@router.post("/refresh", response_model=RefreshOut, status_code=status.HTTP_202_ACCEPTED)
def refresh(session: DbSession, principal: Reader, body: RefreshRequest | None = None) -> Any:
    return service.request_refresh(session, principal.workspace_id, full=bool(body and body.full))


@router.get("/refresh", response_model=RefreshOut)
def refresh_status(session: DbSession, principal: Reader) -> Any:
    return service.latest_refresh(session, principal.workspace_id)


# ---- goals ------------------------------------------------------------------------------------------
@router.get("/goals", response_model=list[GoalOut])
def list_goals(session: DbSession, principal: Reader) -> list[GoalOut]:
    return [goals.to_out(session, g) for g in GoalRepository(session, principal.workspace_id).all()]


@router.post("/goals", response_model=GoalOut, status_code=status.HTTP_201_CREATED)
def create_goal(body: GoalCreate, session: DbSession, principal: Reader) -> GoalOut:
    goal = goals.create_goal(session, principal.workspace_id, body, actor=principal.actor)
    return goals.to_out(session, goal)


@router.get("/goals/{goal_id}", response_model=GoalOut)
def get_goal(goal_id: int, session: DbSession, principal: Reader) -> GoalOut:
    return goals.to_out(session, GoalRepository(session, principal.workspace_id).get_or_404(goal_id))


@router.patch("/goals/{goal_id}", response_model=GoalOut)
def update_goal(goal_id: int, body: GoalUpdate, session: DbSession, principal: Reader) -> GoalOut:
    goal = goals.update_goal(session, principal.workspace_id, goal_id, body, actor=principal.actor)
    return goals.to_out(session, goal)


@router.delete("/goals/{goal_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_goal(goal_id: int, session: DbSession, principal: Reader) -> Response:
    goals.delete_goal(session, principal.workspace_id, goal_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
