from __future__ import annotations

from datetime import timedelta

import pytest

from patronage.kit.jobs.backoff import exponential_backoff, schedule_backoff


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 11, 12, 30, 200])
def test_exponential_backoff_stays_within_half_to_full_ceiling(attempt: int) -> None:
    ceiling = min(3600.0, 2.0 ** max(1, attempt))
    for _ in range(200):
        delay = exponential_backoff(attempt).total_seconds()
        assert ceiling / 2 <= delay <= ceiling


def test_exponential_backoff_is_capped_at_an_hour() -> None:
    assert max(exponential_backoff(100) for _ in range(100)) <= timedelta(hours=1)


def test_schedule_backoff_follows_the_schedule_with_proportional_jitter() -> None:
    delays = [30.0, 120.0, 600.0]
    backoff = schedule_backoff(delays, jitter=0.1)
    for attempt, base in [(0, 30.0), (1, 30.0), (2, 120.0), (3, 600.0), (4, 600.0), (50, 600.0)]:
        for _ in range(100):
            assert base * 0.9 <= backoff(attempt).total_seconds() <= base * 1.1


def test_schedule_backoff_without_jitter_is_exact() -> None:
    backoff = schedule_backoff([5.0, 7.0], jitter=0)
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [5.0, 7.0, 7.0]
