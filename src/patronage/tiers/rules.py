"""Pure tier rules: the ladder, qualifying windows, review dates, upgrade/downgrade decisions, progress.

No database here. Times are aware datetimes; calendar boundaries are taken in the workspace's time zone.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from patronage.ledger.expiry_rules import shift_months


class Metric(StrEnum):
    POINTS_EARNED = "points_earned"
    SPEND = "spend"
    ORDERS = "orders"


class Window(StrEnum):
    LIFETIME = "lifetime"
    CALENDAR_YEAR = "calendar_year"
    ROLLING_12_MONTHS = "rolling_12_months"


class DowngradePolicy(StrEnum):
    DROP_ONE = "drop_one"  # lose one step per review
    QUALIFIED = "qualified"  # go straight to the tier the customer qualifies for


@dataclass(frozen=True)
class TierRule:
    id: int
    name: str
    threshold: Decimal


class Ladder:
    """Tiers ordered by entry threshold (ties broken by id). Rank 0 is the lowest tier."""

    def __init__(self, tiers: Iterable[TierRule]) -> None:
        self.tiers: list[TierRule] = sorted(tiers, key=lambda t: (t.threshold, t.id))
        self._rank = {t.id: i for i, t in enumerate(self.tiers)}

    def __len__(self) -> int:
        return len(self.tiers)

    def get(self, tier_id: int | None) -> TierRule | None:
        return None if tier_id is None or tier_id not in self._rank else self.tiers[self._rank[tier_id]]

    def rank(self, tier_id: int | None) -> int:
        """-1 for "no tier" (and for a tier no longer on the ladder)."""
        return -1 if tier_id is None else self._rank.get(tier_id, -1)

    def qualified(self, value: Decimal) -> TierRule | None:
        """The highest tier whose threshold ``value`` reaches; None below the lowest threshold."""
        best = None
        for tier in self.tiers:
            if value >= tier.threshold:
                best = tier
        return best

    def base(self) -> TierRule | None:
        """The tier everybody has without qualifying (threshold <= 0), if the ladder has one."""
        return self.qualified(Decimal(0))

    def step_below(self, tier_id: int | None) -> TierRule | None:
        rank = self.rank(tier_id)
        return self.tiers[rank - 1] if rank > 0 else None

    def next_above(self, tier_id: int | None) -> TierRule | None:
        rank = self.rank(tier_id)
        return self.tiers[rank + 1] if rank + 1 < len(self.tiers) else None

    def higher(self, a: int | None, b: int | None) -> int | None:
        return a if self.rank(a) >= self.rank(b) else b


# ---- time -------------------------------------------------------------------------------------------
def _year_start(year: int, tz: ZoneInfo) -> datetime:
    return datetime(year, 1, 1, tzinfo=tz).astimezone(UTC)


def window_start(window: Window, end: datetime, tz: ZoneInfo) -> datetime | None:
    """Start (inclusive) of the qualifying window that ends at ``end`` (exclusive); None = all time.

    For a calendar year, a window ending exactly on 1 January covers the year that just closed.
    """
    if window is Window.LIFETIME:
        return None
    if window is Window.ROLLING_12_MONTHS:
        return shift_months(end, -12, tz)
    local = end.astimezone(tz)
    year = local.year
    if (local.month, local.day, local.hour, local.minute, local.second, local.microsecond) == (1, 1, 0, 0, 0, 0):
        year -= 1
    return _year_start(year, tz)


def current_window_start(window: Window, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Start of the window that is running at ``now`` (the calendar year ``now`` falls in)."""
    if window is Window.LIFETIME:
        return None
    if window is Window.ROLLING_12_MONTHS:
        return shift_months(now, -12, tz)
    return _year_start(now.astimezone(tz).year, tz)


def next_review(window: Window, after: datetime, tz: ZoneInfo, *, anchor: datetime | None = None) -> datetime:
    """When a tier held at ``after`` is next reviewed (the end of its qualifying period).

    Calendar year and lifetime: the next 1 January, 00:00 in the workspace's time zone (lifetime reviews
    only catch returns that took the customer below the threshold). Rolling 12 months: 12 months after
    ``anchor`` (when the tier was entered or last confirmed), stepping by 12 months until after ``after``.
    """
    if window is Window.ROLLING_12_MONTHS:
        base = anchor or after
        step = 1
        review = shift_months(base, 12, tz)
        while review <= after:
            step += 1
            review = shift_months(base, 12 * step, tz)
        return review
    local = after.astimezone(tz)
    return _year_start(local.year + 1, tz)


# ---- decisions -----------------------------------------------------------------------------------------
def upgrade_to(ladder: Ladder, current_id: int | None, value: Decimal) -> TierRule | None:
    """The tier to move up to right now, or None when the customer already holds it or better."""
    qualified = ladder.qualified(value)
    if qualified is not None and ladder.rank(qualified.id) > ladder.rank(current_id):
        return qualified
    return None


def keeps_tier(ladder: Ladder, current_id: int | None, value: Decimal) -> bool:
    qualified = ladder.qualified(value)
    return ladder.rank(qualified.id if qualified else None) >= ladder.rank(current_id)


def downgrade_target(
    ladder: Ladder,
    current_id: int | None,
    qualified_at_review: int | None,
    qualified_now: int | None,
    policy: DowngradePolicy,
) -> int | None:
    """Where a customer below their tier's threshold lands when the grace period ends.

    Never below what they qualify for (at the review or now), never above their current tier.
    """
    floor = ladder.higher(qualified_at_review, qualified_now)
    if ladder.rank(floor) >= ladder.rank(current_id):
        return current_id
    if policy is DowngradePolicy.DROP_ONE:
        below = ladder.step_below(current_id)
        return ladder.higher(below.id if below else None, floor)
    return floor


@dataclass(frozen=True)
class Progress:
    metric: Metric
    value: Decimal  # the metric over the current window
    current_tier_id: int | None
    next_tier_id: int | None
    next_threshold: Decimal | None
    to_next: Decimal | None  # how much more of the metric reaches the next tier
    keep_threshold: Decimal | None
    to_keep: Decimal  # how much more is needed by the review to keep the current tier (0 = already safe)
    review_at: datetime | None


def progress(
    ladder: Ladder,
    metric: Metric,
    current_id: int | None,
    value: Decimal,
    *,
    review_at: datetime | None = None,
) -> Progress:
    nxt = ladder.next_above(current_id)
    current = ladder.get(current_id)
    to_next = max(Decimal(0), nxt.threshold - value) if nxt else None
    keep = current.threshold if current else None
    to_keep = max(Decimal(0), keep - value) if keep is not None else Decimal(0)
    return Progress(
        metric=metric,
        value=value,
        current_tier_id=current_id,
        next_tier_id=nxt.id if nxt else None,
        next_threshold=nxt.threshold if nxt else None,
        to_next=to_next,
        keep_threshold=keep,
        to_keep=to_keep,
        review_at=review_at,
    )


def simulate_tiers(tiers: Iterable[TierRule], metrics: Mapping[Hashable, Decimal | int]) -> dict[int | None, int]:
    """How many customers each tier would hold given their qualifying metric (None = no tier).

    Every tier appears in the result (with 0 when empty), so two simulations compare key by key.
    """
    ladder = tiers if isinstance(tiers, Ladder) else Ladder(tiers)
    counts: dict[int | None, int] = {t.id: 0 for t in ladder.tiers}
    counts[None] = 0
    for value in metrics.values():
        tier = ladder.qualified(Decimal(value))
        counts[tier.id if tier else None] += 1
    return counts


def describe_gap(metric: Metric, amount: Decimal, currency: str) -> str:
    """"€120.00" / "350 points" / "2 orders": an amount of the metric in its unit, for people."""
    if metric is Metric.SPEND:
        return f"{amount.quantize(Decimal('0.01'))} {currency}"
    unit = "points" if metric is Metric.POINTS_EARNED else "orders"
    whole = int(amount.to_integral_value(rounding="ROUND_CEILING"))
    return f"{whole} {unit[:-1] if whole == 1 else unit}"


def grace_end(review_at: datetime, grace_days: int) -> datetime:
    return review_at + timedelta(days=grace_days)
