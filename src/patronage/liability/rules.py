"""Pure liability arithmetic: valuing points, age buckets, the breakage estimator, statement reconciliation.

Breakage estimator (see docs/liability.md): points are grouped into cohorts by the month they were earned.
A cohort is *closed* when (almost) none of its points remain open: each was redeemed, expired, reversed
or moved. Over the closed cohorts, pooled by points,

    breakage = expired / (expired + redeemed)

where ``redeemed`` is net of refunds. Reversed (returned orders), adjusted and transferred points are
neither redeemed nor broken and stay out of both sides. Too little closed history (fewer than
``min_cohorts`` cohorts or ``min_points`` resolved points) falls back to the configured rate, else none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
RATE = Decimal("0.0001")


def value(points: int, cost_per_point: Decimal) -> Decimal:
    """The money a number of points stands for, to the cent."""
    return (Decimal(points) * cost_per_point).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class AgeBucket:
    label: str
    min_days: int
    max_days: int | None  # exclusive; None = open-ended


AGE_BUCKETS: tuple[AgeBucket, ...] = (
    AgeBucket("0-90 days", 0, 91),
    AgeBucket("91-180 days", 91, 181),
    AgeBucket("181-365 days", 181, 366),
    AgeBucket("1-2 years", 366, 731),
    AgeBucket("over 2 years", 731, None),
)


def bucket_index(age_days: int, buckets: tuple[AgeBucket, ...] = AGE_BUCKETS) -> int:
    for i, bucket in enumerate(buckets):
        if age_days >= bucket.min_days and (bucket.max_days is None or age_days < bucket.max_days):
            return i
    return 0  # a lot dated in the future (clock skew, backdating) counts as new


@dataclass
class Cohort:
    """Points earned in one month and what became of them."""

    month: str  # YYYY-MM in the workspace's time zone
    issued: int = 0
    redeemed: int = 0  # net of refunds
    expired: int = 0
    reversed: int = 0
    other: int = 0  # adjusted away, transferred on a merge
    remaining: int = 0

    def closed(self, tolerance: Decimal = Decimal(0)) -> bool:
        return self.issued > 0 and Decimal(max(self.remaining, 0)) <= tolerance * self.issued


@dataclass(frozen=True)
class BreakageEstimate:
    rate: Decimal | None
    method: str  # observed | configured | none
    cohorts_used: int
    points_resolved: int  # expired + redeemed over the closed cohorts
    expired: int
    redeemed: int


def estimate_breakage(
    cohorts: Iterable[Cohort],
    *,
    configured: Decimal | None = None,
    min_cohorts: int = 3,
    min_points: int = 1000,
    tolerance: Decimal = Decimal(0),
) -> BreakageEstimate:
    closed = [c for c in cohorts if c.closed(tolerance)]
    expired = sum(c.expired for c in closed)
    redeemed = sum(max(c.redeemed, 0) for c in closed)
    resolved = expired + redeemed
    if len(closed) >= min_cohorts and resolved >= min_points:
        rate = (Decimal(expired) / Decimal(resolved)).quantize(RATE, rounding=ROUND_HALF_UP)
        return BreakageEstimate(rate, "observed", len(closed), resolved, expired, redeemed)
    if configured is not None:
        return BreakageEstimate(configured, "configured", len(closed), resolved, expired, redeemed)
    return BreakageEstimate(None, "none", len(closed), resolved, expired, redeemed)


def net_of_breakage(gross: Decimal, rate: Decimal | None) -> Decimal:
    if rate is None:
        return gross
    return (gross * (1 - rate)).quantize(CENT, rounding=ROUND_HALF_UP)


# ---- statements ----------------------------------------------------------------------------------------------
MOVEMENTS: dict[str, str] = {
    "earn": "earned",
    "release": "released",
    "spend": "redeemed",
    "expire": "expired",
    "reverse": "reversed",
    "adjust": "adjusted",
    "transfer": "transferred",
}


@dataclass(frozen=True)
class Reconciliation:
    opening: int
    movements: dict[str, int]
    closing: int

    @property
    def difference(self) -> int:
        """closing - (opening + movements): 0 when the statement reconciles."""
        return self.closing - (self.opening + sum(self.movements.values()))

    @property
    def reconciles(self) -> bool:
        return self.difference == 0


def movements_by_name(points_by_kind: dict[str, int]) -> dict[str, int]:
    """Transaction kinds to statement lines; every line present (0 when nothing happened)."""
    out = dict.fromkeys(MOVEMENTS.values(), 0)
    for kind, points in points_by_kind.items():
        name = MOVEMENTS.get(kind, kind)
        out[name] = out.get(name, 0) + points
    return out
