"""The pure posting rules under random operation sequences (Hypothesis): every transaction balances,
cached buckets equal the entries, lots hold exactly the available and pending points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patronage.ledger.errors import InsufficientPoints
from patronage.ledger.models import AVAILABLE, CLAWBACK, PENDING
from patronage.ledger.posting import (
    Buckets,
    Plan,
    plan_debit,
    plan_earn,
    plan_expire,
    plan_release,
    plan_reverse,
    plan_transfer_in,
    spend_order,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(eq=False)
class Lot:
    amount: int
    remaining: int
    earned_at: datetime
    expires_at: datetime | None
    released_at: datetime | None


class Model:
    def __init__(self, policy: str = "claw_back", allow_negative: bool = False) -> None:
        self.state = Buckets()
        self.lots: list[Lot] = []
        self.entries: list[tuple[str, int]] = []
        self.policy = policy
        self.allow_negative = allow_negative
        self.earned: list[tuple[Lot, int]] = []  # (own lot, points) per earning
        self.clock = 0

    def apply(self, plan: Plan, new: Lot | None = None) -> None:
        assert sum(a for _, a in plan.entries) == 0
        for lot, part in plan.takes:
            assert 0 < part <= lot.remaining
            lot.remaining -= part
        self.state.apply(plan.deltas)
        self.entries += plan.entries
        if new is not None:
            new.remaining = plan.lot_remaining
            self.lots.append(new)

    def earn(self, points: int, pending: bool, expires_in: int | None) -> None:
        self.clock += 1
        at = T0 + timedelta(days=self.clock)
        lot = Lot(points, 0, at, at + timedelta(days=expires_in) if expires_in else None, None if pending else at)
        self.apply(plan_earn(self.state, points, pending=pending), lot)
        self.earned.append((lot, points))

    def release_all(self) -> None:
        for lot in self.lots:
            if lot.released_at is None:
                plan = plan_release(self.state, lot)
                lot.released_at = T0
                self.apply(plan)
                lot.remaining = plan.lot_remaining

    def spend(self, points: int) -> None:
        try:
            self.apply(plan_debit(self.state, self.open(), points, allow_negative=self.allow_negative))
        except InsufficientPoints:
            assert self.state.available < points and not self.allow_negative

    def expire_oldest(self) -> None:
        dated = [lot for lot in self.open() if lot.expires_at is not None]
        if dated:
            self.apply(plan_expire([min(dated, key=spend_order)]))

    def reverse(self, index: int, fraction: float) -> None:
        if not self.earned:
            return
        own, points = self.earned[index % len(self.earned)]
        amount = max(1, int(points * fraction))
        self.apply(plan_reverse(self.state, [own] if own.remaining else [], self.open(), amount,
                                policy=self.policy))  # type: ignore[arg-type]

    def open(self) -> list[Lot]:
        return [lot for lot in self.lots if lot.remaining > 0]

    def check(self) -> None:
        for bucket, value in ((AVAILABLE, self.state.available), (PENDING, self.state.pending),
                              (CLAWBACK, self.state.clawback)):
            assert value == sum(a for name, a in self.entries if name == bucket)
        assert sum(a for _, a in self.entries) == 0
        released = sum(lot.remaining for lot in self.lots if lot.released_at is not None)
        unreleased = sum(lot.remaining for lot in self.lots if lot.released_at is None)
        assert released == max(self.state.available, 0)
        assert unreleased == self.state.pending
        assert self.state.pending >= 0 and self.state.clawback <= 0
        assert all(0 <= lot.remaining <= lot.amount for lot in self.lots)
        if self.policy != "negative_balance" and not self.allow_negative:
            assert self.state.available >= 0
        if self.state.clawback < 0:
            assert self.state.available <= 0  # a debt is repaid before points become spendable


operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 500), st.booleans(), st.one_of(st.none(), st.integers(1, 400))),
        st.tuples(st.just("spend"), st.integers(1, 600)),
        st.tuples(st.just("release")),
        st.tuples(st.just("expire")),
        st.tuples(st.just("reverse"), st.integers(0, 50), st.floats(0.01, 1.0)),
    ),
    max_size=40,
)


@pytest.mark.parametrize(("policy", "allow_negative"),
                         [("claw_back", False), ("negative_balance", False), ("write_off", False),
                          ("claw_back", True)])
@settings(max_examples=150, deadline=None)
@given(ops=operations)
def test_random_operation_sequences_keep_the_invariants(policy: str, allow_negative: bool, ops: list) -> None:
    model = Model(policy, allow_negative)
    for op in ops:
        if op[0] == "earn":
            model.earn(op[1], op[2], op[3])
        elif op[0] == "spend":
            model.spend(op[1])
        elif op[0] == "release":
            model.release_all()
        elif op[0] == "expire":
            model.expire_oldest()
        else:
            model.reverse(op[1], op[2])
        model.check()


def test_spend_takes_soonest_expiring_lots_first() -> None:
    model = Model()
    model.earn(100, False, None)  # never expires: spent last
    model.earn(100, False, 300)
    model.earn(100, False, 30)
    model.spend(150)
    assert [lot.remaining for lot in model.lots] == [100, 50, 0]


def test_earning_repays_a_claw_back_debt_before_anything_else() -> None:
    model = Model("claw_back")
    model.earn(100, False, None)
    model.spend(80)
    model.reverse(0, 1.0)  # 20 left to take, 80 owed
    assert (model.state.available, model.state.clawback) == (0, -80)
    model.earn(50, False, None)
    assert (model.state.available, model.state.clawback) == (0, -30)
    model.earn(50, True, None)  # pending points repay on release, not before
    assert (model.state.pending, model.state.clawback) == (50, -30)
    model.release_all()
    assert (model.state.available, model.state.clawback) == (20, 0)
    model.check()


def test_write_off_reverses_only_what_is_left() -> None:
    model = Model("write_off")
    model.earn(100, False, None)
    model.spend(70)
    plan = plan_reverse(model.state, [model.lots[0]], model.open(), 100, policy="write_off")
    assert plan.written_off == 70 and plan.customer_points == -30


def test_transfer_in_moves_debts_and_points() -> None:
    survivor = Buckets(available=50)
    lot = Lot(50, 50, T0, None, T0)
    plan = plan_transfer_in(survivor, [lot], available=-20, pending=10, clawback=0, source="system:transfer")
    assert sum(a for _, a in plan.entries) == 0
    assert plan.deltas == {"pending": 10, "available": -20}
    assert plan.takes == [(lot, 20)]
