"""``patronage doctor``: integrity checks. Each domain lists its checks in a ``CHECKS`` sequence.

A check takes a session and returns findings; an "error" finding makes doctor exit non-zero.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.kit.jobs.models import Job, JobStatus, status_is
from patronage.kit.jobs.registry import REGISTRY


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Literal["error", "warning", "ok"]
    message: str


Check = Callable[[Session], list[Finding]]


def check_job_handlers(session: Session) -> list[Finding]:
    tasks = session.scalars(select(Job.task).where(Job.status == JobStatus.QUEUED).distinct()).all()
    unknown = sorted(t for t in tasks if t not in REGISTRY.tasks)
    if unknown:
        return [Finding("jobs.handlers", "error", f"queued jobs with no handler: {', '.join(unknown)}")]
    return [Finding("jobs.handlers", "ok", "every queued job has a handler")]


def check_dead_jobs(session: Session) -> list[Finding]:
    dead = session.scalar(select(func.count()).select_from(Job).where(status_is(JobStatus.DEAD))) or 0
    if dead:
        return [Finding("jobs.dead", "warning", f"{dead} dead job(s); inspect GET /api/v1/jobs?status=dead")]
    return [Finding("jobs.dead", "ok", "no dead jobs")]


CHECKS: Sequence[Check] = (check_job_handlers, check_dead_jobs)


def run_checks(session: Session, modules: Sequence[str]) -> list[Finding]:
    findings: list[Finding] = []
    for module in modules:
        for check in getattr(importlib.import_module(module), "CHECKS", ()):
            findings.extend(check(session))
    return findings
