"""The one source of "now": aware UTC, frozen and moved by tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from patronage.kit import clock


def test_now_is_aware_utc() -> None:
    now = clock.utcnow()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_freeze_advance_unfreeze() -> None:
    lisbon_summer = datetime(2030, 7, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    clock.freeze(lisbon_summer)
    assert clock.utcnow() == datetime(2030, 7, 1, 12, 0, tzinfo=UTC)
    assert clock.utcnow().tzinfo == UTC
    assert clock.utcnow() == clock.utcnow()  # frozen means frozen
    clock.advance(timedelta(days=1, minutes=5))
    assert clock.utcnow() == datetime(2030, 7, 2, 12, 5, tzinfo=UTC)
    clock.unfreeze()
    assert clock.utcnow().year != 2030 or clock.utcnow() != datetime(2030, 7, 2, 12, 5, tzinfo=UTC)


def test_frozen_at_restores_the_real_clock() -> None:
    with clock.frozen_at(datetime(2031, 1, 1, tzinfo=UTC)):
        assert clock.utcnow() == datetime(2031, 1, 1, tzinfo=UTC)
    assert abs(clock.utcnow() - datetime.now(UTC)) < timedelta(minutes=5)


def test_naive_times_and_unfrozen_advances_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.freeze(datetime(2030, 1, 1))
    with pytest.raises(RuntimeError, match="not frozen"):
        clock.advance(timedelta(seconds=1))
