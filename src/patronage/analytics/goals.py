"""KPI goals: a target with a deadline, its progress from the baseline, and a Holt's-method forecast."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from patronage.analytics.calendar import Period, next_period_start, period_start
from patronage.analytics.forecast import MIN_POINTS, fit_holt
from patronage.analytics.kpis import NOT_AVAILABLE, Kpi
from patronage.analytics.models import KpiGoal
from patronage.analytics.repository import GoalRepository, ResultRepository
from patronage.analytics.schemas import GoalCreate, GoalOut, GoalProgress, GoalUpdate
from patronage.kit.audit import audit
from patronage.kit.errors import field_error

FORECAST_METHOD = "holt_linear"


def _series(session: Session, goal: KpiGoal) -> tuple[list[str], list[str], list[float | None], list[bool]] | None:
    key = f"kpi/{goal.period}/{goal.breakdown or 'all'}/{goal.kpi}"
    result = ResultRepository(session, goal.workspace_id).by_key(key)
    if result is None:
        return None
    payload: dict[str, Any] = result.payload
    values = payload["groups"].get(goal.group or "all")
    if values is None:
        return None
    return payload["labels"], payload["starts"], values, payload["partial"]


def _latest(series: tuple[list[str], list[str], list[float | None], list[bool]]) -> tuple[str, float] | None:
    labels, _, values, partial = series
    complete = [(label, v) for label, v, p in zip(labels, values, partial, strict=True) if v is not None and not p]
    if complete:
        return complete[-1]
    anything = [(label, v) for label, v in zip(labels, values, strict=True) if v is not None]
    return anything[-1] if anything else None


def _meets(value: float, comparator: str, target: float) -> bool:
    return value >= target if comparator == "gte" else value <= target


def progress(session: Session, goal: KpiGoal) -> GoalProgress:
    kpi = Kpi(goal.kpi)
    empty = GoalProgress(
        current=None, current_period=None, baseline=goal.baseline, baseline_period=goal.baseline_label,
        percent_of_way=None, achieved=False, forecast_method=FORECAST_METHOD, forecast_at_deadline=None,
        periods_to_deadline=None, on_track=None,
    )
    if kpi in NOT_AVAILABLE:
        return empty.model_copy(update={"note": NOT_AVAILABLE[kpi]})
    series = _series(session, goal)
    latest = _latest(series) if series else None
    if series is None or latest is None:
        return empty.model_copy(update={"note": "no data for this KPI yet; refresh analytics"})
    label, current = latest
    baseline = goal.baseline if goal.baseline is not None else current
    span = goal.target - baseline
    percent = 100.0 if span == 0 else round(100.0 * (current - baseline) / span, 4)
    labels, starts, values, partial = series
    index = labels.index(label)
    history = [v for v, p in zip(values[: index + 1], partial[: index + 1], strict=True) if v is not None and not p]
    period = Period(goal.period)
    steps = _periods_between(date.fromisoformat(starts[index]), goal.deadline, period)
    fit = fit_holt(history)
    forecast = round(fit.forecast(steps), 10) if fit is not None and steps >= 0 else None
    note = None if fit is not None else f"a forecast needs at least {MIN_POINTS} complete periods"
    return GoalProgress(
        current=current, current_period=label, baseline=baseline,
        baseline_period=goal.baseline_label or label, percent_of_way=percent,
        achieved=_meets(current, goal.comparator, goal.target), forecast_method=FORECAST_METHOD,
        forecast_at_deadline=forecast, periods_to_deadline=steps,
        on_track=None if forecast is None else _meets(forecast, goal.comparator, goal.target), note=note,
    )


def _periods_between(current_start: date, deadline: date, period: Period) -> int:
    """Periods from the current one to the one holding the deadline (0: the deadline is in it)."""
    target = period_start(deadline, period)
    steps, cursor = 0, current_start
    if target < cursor:
        return -1
    while cursor < target:
        cursor = next_period_start(cursor, period)
        steps += 1
    return steps


def to_out(session: Session, goal: KpiGoal) -> GoalOut:
    out = GoalOut.model_validate(goal)
    out.progress = progress(session, goal)
    return out


def create_goal(session: Session, workspace_id: int, data: GoalCreate, *, actor: str) -> KpiGoal:
    if (data.breakdown is None) != (data.group is None):
        raise field_error("group", "give both breakdown and group, or neither")
    goal = GoalRepository(session, workspace_id).new(
        name=data.name, kpi=data.kpi.value, period=data.period, breakdown=data.breakdown, group=data.group,
        comparator=data.comparator, target=data.target, deadline=data.deadline,
    )
    series = _series(session, goal)
    latest = _latest(series) if series else None
    if latest is not None:
        goal.baseline_label, goal.baseline = latest
    audit(session, workspace_id=workspace_id, actor=actor, action="goal.created", subject_type="kpi_goal",
          subject_id=goal.id, data={"kpi": goal.kpi, "target": goal.target})
    session.flush()
    return goal


def update_goal(session: Session, workspace_id: int, goal_id: int, data: GoalUpdate, *, actor: str) -> KpiGoal:
    goal = GoalRepository(session, workspace_id).get_or_404(goal_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise field_error(field, "may not be null")
        setattr(goal, field, value)
    audit(session, workspace_id=workspace_id, actor=actor, action="goal.updated", subject_type="kpi_goal",
          subject_id=goal.id, data=data.model_dump(mode="json", exclude_unset=True))
    session.flush()
    return goal


def delete_goal(session: Session, workspace_id: int, goal_id: int, *, actor: str) -> None:
    goal = GoalRepository(session, workspace_id).get_or_404(goal_id)
    session.delete(goal)
    audit(session, workspace_id=workspace_id, actor=actor, action="goal.deleted", subject_type="kpi_goal",
          subject_id=goal_id)
    session.flush()
