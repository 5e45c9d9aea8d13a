"""Liability reporting: what outstanding points are worth, how much of it will never be redeemed
(breakage, estimated from the workspace's own history), and period statements that reconcile to the
ledger. The ledger is only read; the report's headline figures are kept as snapshots (computed by a
job, ``liability/tasks.py``) so that pages can show them without reading the ledger."""

from __future__ import annotations

import time as timer
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from patronage.kit.clock import utcnow
from patronage.kit.errors import field_error
from patronage.kit.jobs import enqueue
from patronage.ledger.expiry_rules import local_to_utc
from patronage.ledger.models import CUSTOMER_BUCKETS, TxKind
from patronage.ledger.program import Program, load_program
from patronage.liability.models import LiabilitySnapshot
from patronage.liability.repository import Basis, LiabilityRepository, SnapshotRepository
from patronage.liability.rules import (
    AGE_BUCKETS,
    MOVEMENTS,
    BreakageEstimate,
    Cohort,
    Reconciliation,
    estimate_breakage,
    movements_by_name,
    net_of_breakage,
    value,
)
from patronage.liability.schemas import LiabilityOut

MAX_STATEMENT_DAYS = 3700


@dataclass(frozen=True)
class Amount:
    points: int
    value: Decimal


@dataclass(frozen=True)
class AgeLine:
    label: str
    min_days: int
    max_days: int | None
    available: Amount
    pending: Amount


@dataclass(frozen=True)
class LiabilityReport:
    as_of: datetime
    currency: str
    cost_per_point: Decimal
    available: Amount
    pending: Amount
    outstanding: Amount
    by_age: list[AgeLine]
    expiring_30_days: Amount
    expiring_90_days: Amount
    clawback_owed: int
    overdrawn: int
    breakage: BreakageEstimate
    breakage_value: Decimal
    liability_net: Decimal


def _amount(points: int, program: Program) -> Amount:
    return Amount(points, value(points, program.cost_per_point))


def liability(session: Session, workspace_id: int) -> LiabilityReport:
    program = load_program(session, workspace_id)
    reports = LiabilityRepository(session, workspace_id)
    now = utcnow()
    grid = [[0, 0] for _ in AGE_BUCKETS]  # [available, pending] per age bucket
    for bucket, pending, points in reports.open_points_by_age(now):
        grid[bucket][1 if pending else 0] += points
    available = sum(row[0] for row in grid)
    pending_points = sum(row[1] for row in grid)
    outstanding = _amount(available + pending_points, program)
    estimate = breakage(session, workspace_id, program=program)
    net = net_of_breakage(outstanding.value, estimate.rate)
    totals = reports.account_totals()
    return LiabilityReport(
        as_of=now, currency=program.currency, cost_per_point=program.cost_per_point,
        available=_amount(available, program), pending=_amount(pending_points, program), outstanding=outstanding,
        by_age=[AgeLine(b.label, b.min_days, b.max_days, _amount(row[0], program), _amount(row[1], program))
                for b, row in zip(AGE_BUCKETS, grid, strict=True)],
        expiring_30_days=_amount(reports.open_points_expiring(now, 30), program),
        expiring_90_days=_amount(reports.open_points_expiring(now, 90), program),
        clawback_owed=-totals["clawback"], overdrawn=-totals["overdraft"],
        breakage=estimate, breakage_value=outstanding.value - net, liability_net=net,
    )


# ---- breakage ------------------------------------------------------------------------------------------------

def cohorts(session: Session, workspace_id: int, *, tz_name: str | None = None) -> list[Cohort]:
    """Earned points by month of earning (workspace time zone), with what became of them."""
    tz = ZoneInfo(tz_name or load_program(session, workspace_id).timezone)
    reports = LiabilityRepository(session, workspace_id)
    month_of: dict[int, str] = {}
    by_month: dict[str, Cohort] = {}
    for lot_id, earned_at, amount, remaining, kind in reports.lots():
        month = earned_at.astimezone(tz).strftime("%Y-%m")
        month_of[lot_id] = month
        cohort = by_month.setdefault(month, Cohort(month))
        if kind == TxKind.REVERSE:  # a refund of spent points: un-redeems them, in their original cohort
            cohort.redeemed -= amount
        else:
            cohort.issued += amount
        cohort.remaining += remaining
    for lot_id, kind, points in reports.allocations_by_lot():
        found = by_month.get(month_of.get(lot_id, ""))
        if found is None:
            continue
        if kind == TxKind.SPEND:
            found.redeemed += points
        elif kind == TxKind.EXPIRE:
            found.expired += points
        elif kind == TxKind.REVERSE:
            found.reversed += points
        else:
            found.other += points
    return [by_month[m] for m in sorted(by_month)]


def breakage(session: Session, workspace_id: int, *, program: Program | None = None) -> BreakageEstimate:
    return breakage_report(session, workspace_id, program=program)[0]


def breakage_report(
    session: Session, workspace_id: int, *, program: Program | None = None
) -> tuple[BreakageEstimate, list[Cohort]]:
    program = program or load_program(session, workspace_id)
    found = cohorts(session, workspace_id, tz_name=program.timezone)
    return estimate_breakage(found, configured=program.breakage_rate), found


# ---- statements ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    start: datetime
    end: datetime
    basis: Basis
    currency: str
    cost_per_point: Decimal
    opening: dict[str, int]  # per bucket + "total"
    movements: dict[str, int]  # per statement line (earned, redeemed, ...)
    movements_by_bucket: dict[str, dict[str, int]]
    closing: dict[str, int]
    reconciliation: Reconciliation
    values: dict[str, Decimal] = field(default_factory=dict)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return local_to_utc(datetime.combine(day, time()), tz)


def _with_total(buckets: dict[str, int]) -> dict[str, int]:
    return {**buckets, "total": sum(buckets[b] for b in CUSTOMER_BUCKETS)}


def statement(
    session: Session, workspace_id: int, *, start: date, end: date, basis: Basis = "booked"
) -> Statement:
    """Points held by customers from local midnight of ``start`` to local midnight after ``end``.

    Opening and closing come from the ledger's entries (customer buckets); movements from the
    transactions' net points. ``reconciliation.difference`` is 0 when opening + movements == closing.
    """
    if end < start:
        raise field_error("end", "must not be before start")
    if (end - start).days > MAX_STATEMENT_DAYS:
        raise field_error("end", f"a statement covers at most {MAX_STATEMENT_DAYS} days")
    program = load_program(session, workspace_id)
    tz = ZoneInfo(program.timezone)
    t0, t1 = _local_midnight(start, tz), _local_midnight(end + timedelta(days=1), tz)
    reports = LiabilityRepository(session, workspace_id)
    opening = _with_total(reports.bucket_balances(t0, basis))
    closing = _with_total(reports.bucket_balances(t1, basis))
    movements = movements_by_name(reports.points_by_kind(t0, t1, basis))
    by_bucket = {name: dict.fromkeys(CUSTOMER_BUCKETS, 0) for name in movements}
    for (kind, bucket), points in reports.bucket_movements(t0, t1, basis).items():
        by_bucket.setdefault(MOVEMENTS.get(kind, kind), dict.fromkeys(CUSTOMER_BUCKETS, 0))[bucket] += points
    rec = Reconciliation(opening["total"], movements, closing["total"])
    values = {"opening": value(opening["total"], program.cost_per_point),
              "closing": value(closing["total"], program.cost_per_point),
              **{name: value(points, program.cost_per_point) for name, points in movements.items()}}
    return Statement(start=t0, end=t1, basis=basis, currency=program.currency, cost_per_point=program.cost_per_point,
                     opening=opening, movements=movements, movements_by_bucket=by_bucket, closing=closing,
                     reconciliation=rec, values=values)


# ---- snapshots -----------------------------------------------------------------------------------------------
SNAPSHOT_TASK = "liability.snapshot"


def report_payload(report: LiabilityReport) -> dict[str, Any]:
    """The report as GET /reports/liability returns it (JSON-ready)."""
    return LiabilityOut.model_validate(asdict(report)).model_dump(mode="json")


def store_snapshot(
    session: Session, workspace_id: int, report: LiabilityReport, *, timezone: str, duration_ms: int = 0
) -> LiabilitySnapshot:
    """Keep ``report`` as the workspace's snapshot of its local day (replacing an earlier one of that day).

    A report older than the stored one of its day is ignored: two jobs that overlap end with the newer."""
    day = report.as_of.astimezone(ZoneInfo(timezone)).date()
    snapshots = SnapshotRepository(session, workspace_id)
    row = snapshots.of_day(day, for_update=True)
    values: dict[str, Any] = {
        "as_of": report.as_of, "duration_ms": duration_ms, "currency": report.currency,
        "cost_per_point": report.cost_per_point, "available": report.available.points,
        "pending": report.pending.points, "outstanding": report.outstanding.points,
        "value": report.outstanding.value, "net_value": report.liability_net,
        "breakage_rate": report.breakage.rate, "breakage_method": report.breakage.method,
        "expiring_30_days": report.expiring_30_days.points, "expiring_90_days": report.expiring_90_days.points,
        "report": report_payload(report),
    }
    if row is None:
        return snapshots.new(day=day, **values)
    if row.as_of <= report.as_of:
        for name, v in values.items():
            setattr(row, name, v)
        session.flush()
    return row


def take_snapshot(reader: Session, writer: Session, workspace_id: int) -> LiabilitySnapshot:
    """Compute the report on ``reader`` (the slow part, no write lock held) and store it with ``writer``."""
    started = timer.perf_counter()
    program = load_program(reader, workspace_id)
    report = liability(reader, workspace_id)
    duration_ms = round((timer.perf_counter() - started) * 1000)
    return store_snapshot(writer, workspace_id, report, timezone=program.timezone, duration_ms=duration_ms)


def latest_snapshot(session: Session, workspace_id: int) -> LiabilitySnapshot | None:
    return SnapshotRepository(session, workspace_id).latest()


def request_snapshot(session: Session, workspace_id: int) -> None:
    """Queue a fresh snapshot (once: a snapshot already waiting covers this request too)."""
    enqueue(session, SNAPSHOT_TASK, workspace_id=workspace_id, unique_key=f"{SNAPSHOT_TASK}:{workspace_id}")
