"""Retry delays: exponential with full jitter, capped, or a fixed schedule with proportional jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

Backoff = Callable[[int], timedelta]
_rng = random.SystemRandom()


def exponential_backoff(attempt: int, *, base: float = 2.0, cap: float = 3600.0) -> timedelta:
    """Delay before retry number ``attempt`` (1-based): uniform in [base^attempt / 2, base^attempt]."""
    ceiling = min(cap, base ** max(1, attempt))
    return timedelta(seconds=ceiling / 2 + _rng.uniform(0, ceiling / 2))


def schedule_backoff(delays_seconds: list[float], jitter: float = 0.1) -> Backoff:
    """A fixed retry schedule (e.g. webhooks over ~24 h) with +-``jitter`` proportional noise."""

    def delay(attempt: int) -> timedelta:
        base = delays_seconds[min(max(attempt, 1), len(delays_seconds)) - 1]
        return timedelta(seconds=base * (1 + _rng.uniform(-jitter, jitter)))

    return delay
