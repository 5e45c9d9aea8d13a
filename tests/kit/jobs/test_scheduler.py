"""Periodic jobs through the worker: a whole DST-change day fires a daily job exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.jobs.models import Job, JobSchedule
from patronage.kit.jobs.registry import REGISTRY, PeriodicSpec
from patronage.kit.jobs.scheduler import sync_schedules
from patronage.kit.jobs.worker import Worker
from tests.conftest import make_tenant
from tests.kit.jobs.conftest import run_rows

pytestmark = pytest.mark.usefixtures("runs")
STEP = timedelta(minutes=30)


@pytest.fixture
def daily_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, cron in (("test.daily_0130", "30 1 * * *"), ("test.daily_0230", "30 2 * * *")):
        monkeypatch.setitem(REGISTRY.periodic, name, PeriodicSpec(name, cron, "test.record", per_workspace=True))


@pytest.mark.usefixtures("daily_jobs")
@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("Europe/Lisbon", date(2024, 10, 27)),  # fall back: 01:00-02:00 happens twice (25-hour day)
        ("America/New_York", date(2024, 3, 10)),  # spring forward: 02:00-03:00 never happens (23 hours)
    ],
)
def test_a_dst_change_day_fires_each_daily_job_once(db: Database, worker: Worker, tz: str, day: date) -> None:
    tenant = make_tenant(db, "dst", timezone=tz)
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    now = start
    while now < end:  # the worker wakes every half hour through the whole local day
        clock.freeze(now)
        worker.run_once()
        now += STEP

    with db.unit_of_work(read_only=True) as session:
        jobs = session.scalars(select(Job).where(Job.task == "test.record").order_by(Job.id)).all()
    fired = {(j.unique_key or "").split(":")[1]: datetime.fromisoformat(j.payload["fire_time"]) for j in jobs}
    assert len(jobs) == 2
    assert set(fired) == {"test.daily_0130", "test.daily_0230"}
    assert all(j.workspace_id == tenant.workspace_id and j.status == "succeeded" for j in jobs)
    assert all(f.astimezone(zone).date() == day for f in fired.values())
    assert len(run_rows(db)) == 2  # and each ran once


def test_missed_firings_collapse_into_one(db: Database, worker: Worker, daily_jobs: None) -> None:
    make_tenant(db, "asleep", timezone="Europe/Lisbon")
    clock.freeze(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    worker.run_once()  # creates the schedules
    clock.advance(timedelta(days=3))  # the worker was down for three days
    worker.run_once()
    worker.run_once()
    with db.unit_of_work(read_only=True) as session:
        schedules = session.scalars(select(JobSchedule).where(JobSchedule.name.like("test.%"))).all()
    assert len(run_rows(db)) == 2  # one catch-up run per schedule, not three each
    assert all(s.next_run_at > clock.utcnow() for s in schedules)


def test_workers_syncing_schedules_at_once_do_not_fail(
    db: Database, worker: Worker, daily_jobs: None
) -> None:
    """A second worker's tick inserts the same schedule rows as an open transaction: it must not crash."""
    make_tenant(db, "race", timezone="UTC")
    other = Worker(db, worker.settings, name="other")
    errors: list[BaseException] = []

    def tick() -> None:
        try:
            other.tick()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    with db.unit_of_work() as session:
        sync_schedules(session)  # inserted, not committed yet
        thread = threading.Thread(target=tick)
        thread.start()
        thread.join(timeout=0.5)  # PostgreSQL: blocked on the unique index; SQLite: on the write lock
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    with db.unit_of_work(read_only=True) as session:
        names = session.scalars(select(JobSchedule.name).where(JobSchedule.name.like("test.%"))).all()
    assert sorted(names) == ["test.daily_0130", "test.daily_0230"]
