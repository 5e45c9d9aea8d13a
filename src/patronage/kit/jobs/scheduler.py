"""Periodic jobs: one schedule row per (task, workspace) holding the next firing in that time zone."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.jobs.cron import next_fire_time
from patronage.kit.jobs.models import JobSchedule
from patronage.kit.jobs.queue import enqueue
from patronage.kit.jobs.registry import REGISTRY


def _workspace_zones(session: Session) -> dict[int, str]:
    from patronage.workspaces.models import Workspace

    return {ws_id: tz for ws_id, tz in session.execute(select(Workspace.id, Workspace.timezone))}


def sync_schedules(session: Session) -> None:
    """Make the schedule rows match the registered periodic tasks and the workspaces' time zones."""
    now = utcnow()
    zones = _workspace_zones(session)
    wanted: dict[tuple[str, str], tuple[int | None, str, str]] = {}
    for spec in REGISTRY.periodic.values():
        if spec.per_workspace:
            for zone_ws_id, tz in zones.items():
                wanted[(spec.name, f"ws:{zone_ws_id}")] = (zone_ws_id, tz, spec.cron)
        else:
            wanted[(spec.name, "global")] = (None, "UTC", spec.cron)
    existing = {(s.name, s.scope): s for s in session.scalars(select(JobSchedule))}
    for key, (ws_id, tz, cron) in wanted.items():
        row = existing.get(key)
        if row is None:
            session.add(
                JobSchedule(
                    name=key[0],
                    scope=key[1],
                    workspace_id=ws_id,
                    cron=cron,
                    timezone=tz,
                    next_run_at=next_fire_time(cron, tz, now),
                )
            )
        elif row.cron != cron or row.timezone != tz:
            row.cron, row.timezone = cron, tz
            row.next_run_at = next_fire_time(cron, tz, now)
    for key, row in existing.items():
        if key not in wanted:
            session.delete(row)
    session.flush()


def fire_due_schedules(session: Session, *, postgres: bool) -> int:
    """Enqueue each due schedule once and move it to its next firing. Missed firings collapse to one."""
    now = utcnow()
    stmt = select(JobSchedule).where(JobSchedule.next_run_at <= now).order_by(JobSchedule.id)
    if postgres:
        stmt = stmt.with_for_update(skip_locked=True)
    fired = 0
    for schedule in session.scalars(stmt):
        if schedule.name not in REGISTRY.periodic:
            continue
        fire_at = schedule.next_run_at
        enqueue(
            session,
            REGISTRY.periodic[schedule.name].task,
            {"fire_time": fire_at.isoformat()},
            workspace_id=schedule.workspace_id,
            unique_key=f"cron:{schedule.name}:{schedule.scope}:{fire_at.isoformat()}",
        )
        schedule.last_run_at = fire_at
        schedule.next_run_at = next_fire_time(schedule.cron, schedule.timezone, max(now, fire_at))
        fired += 1
    return fired
