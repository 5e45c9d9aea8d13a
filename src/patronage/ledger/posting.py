"""How each kind of ledger transaction moves points: pure planning, no database.

A ``Plan`` lists the entries of one transaction (summing to zero), what it takes from which lots, and
what a newly credited lot keeps. The single-transaction service (service.py) and the bulk replay path
(bulk.py) both post what these functions plan, so they can never disagree on the rules:

* points becoming available first repay a claw-back debt, then cover an overdraft (negative balance);
* spending consumes available lots soonest-expiring first;
* a reversal takes from its own lot first, then from other available lots; a shortfall follows the
  workspace's policy (negative balance, claw-back debt, or write-off).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from patronage.ledger.errors import InsufficientPoints
from patronage.ledger.models import (
    ADJUSTED,
    AVAILABLE,
    CLAWBACK,
    CUSTOMER_BUCKETS,
    EXPIRED,
    ISSUED,
    PENDING,
    REDEEMED,
    REVERSED,
)

ShortfallPolicy = Literal["negative_balance", "claw_back", "write_off"]
SHORTFALL_POLICIES: tuple[str, ...] = ("negative_balance", "claw_back", "write_off")


class LotLike(Protocol):
    remaining: int
    released_at: datetime | None
    expires_at: datetime | None
    earned_at: datetime


@dataclass
class Buckets:
    """A customer account's cached balances."""

    available: int = 0
    pending: int = 0
    clawback: int = 0  # <= 0

    def apply(self, deltas: dict[str, int]) -> None:
        self.available += deltas.get(AVAILABLE, 0)
        self.pending += deltas.get(PENDING, 0)
        self.clawback += deltas.get(CLAWBACK, 0)


@dataclass
class Plan:
    entries: list[tuple[str, int]] = field(default_factory=list)
    takes: list[tuple[Any, int]] = field(default_factory=list)  # (lot, points taken from it)
    lot_remaining: int = 0  # what a lot credited by this transaction keeps (earn, release, adjust)
    repaid: int = 0  # claw-back debt repaid
    covered: int = 0  # overdraft covered
    written_off: int = 0

    def add(self, account: str, amount: int) -> None:
        if amount:
            self.entries.append((account, amount))

    @property
    def deltas(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for account, amount in self.entries:
            if account in CUSTOMER_BUCKETS:
                out[account] = out.get(account, 0) + amount
        return out

    @property
    def customer_points(self) -> int:
        """Net change of the customer's holdings (what the transaction's ``points`` records)."""
        return sum(self.deltas.values())

    def check(self) -> None:
        if sum(a for _, a in self.entries) != 0:  # pragma: no cover - a bug, never user input
            raise AssertionError(f"unbalanced transaction: {self.entries}")


def spend_order(lot: LotLike) -> tuple[bool, datetime, datetime]:
    """Sort key: soonest-expiring first (never-expiring last), then oldest."""
    return (lot.expires_at is None, lot.expires_at or lot.earned_at, lot.earned_at)


def _credit_available(plan: Plan, state: Buckets, amount: int) -> None:
    repay = min(-state.clawback, amount) if state.clawback < 0 else 0
    rest = amount - repay
    cover = min(-state.available, rest) if state.available < 0 else 0
    plan.add(CLAWBACK, repay)
    plan.add(AVAILABLE, rest)
    plan.repaid, plan.covered, plan.lot_remaining = repay, cover, rest - cover


def plan_earn(state: Buckets, points: int, *, pending: bool, source: str = ISSUED) -> Plan:
    if points <= 0:
        raise ValueError("earned points must be positive")
    plan = Plan()
    plan.add(source, -points)
    if pending:
        plan.add(PENDING, points)
        plan.lot_remaining = points
    else:
        _credit_available(plan, state, points)
    plan.check()
    return plan


def plan_release(state: Buckets, lot: LotLike) -> Plan:
    """A pending lot's remaining points become available."""
    plan = Plan()
    plan.add(PENDING, -lot.remaining)
    _credit_available(plan, state, lot.remaining)
    plan.check()
    return plan


def _take(plan: Plan, lots: Sequence[LotLike], wanted: int) -> int:
    taken = 0
    for lot in sorted(lots, key=spend_order):
        if taken >= wanted:
            break
        part = min(lot.remaining, wanted - taken)
        if part > 0:
            plan.takes.append((lot, part))
            taken += part
    return taken


def plan_debit(
    state: Buckets, lots: Sequence[LotLike], points: int, *, sink: str = REDEEMED, allow_negative: bool
) -> Plan:
    """Spend (or a negative adjustment): available lots, soonest-expiring first."""
    if points <= 0:
        raise ValueError("points must be positive")
    if state.available < points and not allow_negative:
        raise InsufficientPoints(
            f"{points} points requested, {max(state.available, 0)} available",
            available=max(state.available, 0), requested=points,
        )
    plan = Plan()
    _take(plan, [lot for lot in lots if lot.released_at is not None], points)
    plan.add(AVAILABLE, -points)
    plan.add(sink, points)
    plan.check()
    return plan


def plan_expire(lots: Sequence[LotLike]) -> Plan:
    plan = Plan()
    total = 0
    by_bucket = {AVAILABLE: 0, PENDING: 0}
    for lot in lots:
        if lot.remaining > 0:
            plan.takes.append((lot, lot.remaining))
            by_bucket[AVAILABLE if lot.released_at is not None else PENDING] += lot.remaining
            total += lot.remaining
    plan.add(AVAILABLE, -by_bucket[AVAILABLE])
    plan.add(PENDING, -by_bucket[PENDING])
    plan.add(EXPIRED, total)
    plan.check()
    return plan


def plan_reverse(
    state: Buckets,
    own_lots: Sequence[LotLike],
    other_lots: Sequence[LotLike],
    points: int,
    *,
    policy: ShortfallPolicy,
) -> Plan:
    """Take back ``points`` an earning gave: its own lot first, then other available lots, then policy."""
    if points <= 0:
        raise ValueError("points must be positive")
    plan = Plan()
    taken = _take(plan, own_lots, points)
    own = {id(lot) for lot in own_lots}
    taken += _take(
        plan, [lot for lot in other_lots if id(lot) not in own and lot.released_at is not None], points - taken
    )
    from_pending = sum(part for lot, part in plan.takes if lot.released_at is None)
    from_available = taken - from_pending
    shortfall = points - taken
    # Points already taken from available lots cannot exceed a positive available balance.
    plan.add(PENDING, -from_pending)
    if shortfall and policy == "negative_balance":
        plan.add(AVAILABLE, -(from_available + shortfall))
    elif shortfall and policy == "claw_back":
        plan.add(AVAILABLE, -from_available)
        plan.add(CLAWBACK, -shortfall)
    else:
        plan.add(AVAILABLE, -from_available)
        plan.written_off = shortfall
        points = taken
    plan.add(REVERSED, points)
    plan.check()
    return plan


def plan_adjust_credit(state: Buckets, points: int) -> Plan:
    return plan_earn(state, points, pending=False, source=ADJUSTED)


def plan_transfer_in(
    state: Buckets,
    own_lots: Sequence[LotLike],
    *,
    available: int,
    pending: int,
    clawback: int,
    source: str,
) -> Plan:
    """Merge: the survivor receives another account's buckets. Incoming available points first repay
    the survivor's debts; incoming debts (overdraft, claw-back) first take from available lots."""
    plan = Plan()
    plan.add(source, -(available + pending + clawback))
    plan.add(PENDING, pending)
    if available > 0:
        _credit_available(plan, state, available)
    owed = -min(available, 0) - clawback
    if owed:
        policy: ShortfallPolicy = "claw_back" if clawback < 0 else "negative_balance"
        debt_plan = plan_reverse(state, [], own_lots, owed, policy=policy)
        # Re-booked: the debt's other side is the incoming source, not system:reversed.
        for account, amount in debt_plan.entries:
            if account in CUSTOMER_BUCKETS:
                plan.add(account, amount)
        plan.takes.extend(debt_plan.takes)
    plan.check()
    return plan
