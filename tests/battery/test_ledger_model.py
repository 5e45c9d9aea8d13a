"""A Hypothesis state machine drives one customer's account through the real services — earn (with and
without expiry dates), redeem a reward, return part of an earning, let time pass and run the expiry job,
adjust by hand, and refer a friend whose first order converts — against a small in-memory model of
the ledger's rules (docs/ledger.md). After every step the balance, the claw-back debt and every open
lot equal the model's, and `patronage doctor`'s checks pass.

Every example starts from an empty database. ``make test`` runs a fixed set of examples (a fixed seed);
``make soak`` many random ones. The seed is printed (``PATRONAGE_LEDGER_SEED=<seed>`` replays the run), and
a failure prints its steps and a ``@reproduce_failure`` blob that replays that one example.
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from patronage import domains
from patronage.customers.models import Customer
from patronage.events import orders
from patronage.events.schemas import OrderIn
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.doctor import run_checks
from patronage.kit.models import Base
from patronage.ledger import maintenance, program
from patronage.ledger import service as ledger
from patronage.ledger.errors import InsufficientPoints
from patronage.referrals import service as referrals
from patronage.referrals.schemas import ReferralProgramIn
from patronage.rewards import service as rewards
from patronage.rewards.rules import RewardKind
from patronage.rewards.schemas import RewardCreate
from patronage.workspaces import service as workspaces
from patronage.workspaces.schemas import WorkspaceCreate
from tests.battery.conftest import SOAK
from tests.conftest import empty_postgres

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)
REWARD_COST = 30
REFERRER_POINTS = 40
FAR = datetime(9999, 1, 1, tzinfo=UTC)
FIXED_SEED = 20250101


@dataclass
class Lot:
    remaining: int
    expires_at: datetime | None
    earned_at: datetime
    source: str | None  # the earning this lot came from (reversible), None for adjustments
    expired: int = 0  # what expiry took from it

    def order(self) -> tuple[bool, datetime, datetime]:  # posting.spend_order
        return (self.expires_at is None, self.expires_at or self.earned_at, self.earned_at)


@dataclass
class Model:
    """The ledger's rules for one account under the default program (claw-back on reversal shortfall)."""

    now: datetime = T0
    available: int = 0
    clawback: int = 0  # <= 0: owed
    lots: list[Lot] = field(default_factory=list)
    earned: dict[str, tuple[int, int]] = field(default_factory=dict)  # source -> (earned, reversed so far)

    def credit(self, points: int, *, expires_at: datetime | None, source: str | None) -> None:
        repay = min(-self.clawback, points)  # points first repay a claw-back debt
        self.clawback += repay
        self.available += points - repay
        self.lots.append(Lot(points - repay, expires_at, self.now, source))
        if source is not None:
            self.earned[source] = (points, 0)

    def settle(self) -> None:
        for lot in self.lots:
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now:
                self.available -= lot.remaining
                lot.expired += lot.remaining
                lot.remaining = 0

    def take(self, lots: list[Lot], wanted: int) -> int:
        taken = 0
        for lot in sorted(lots, key=Lot.order):
            part = min(lot.remaining, wanted - taken)
            lot.remaining -= part
            taken += part
        return taken

    def debit(self, points: int) -> bool:
        """Spend (settling first); a refused debit changes nothing, its settlement included (rolled back)."""
        before = copy.deepcopy((self.available, self.lots))
        self.settle()
        if self.available < points:
            self.available, self.lots = before
            return False
        self.available -= self.take([lot for lot in self.lots if lot.remaining > 0], points)
        return True

    def reverse(self, source: str, points: int) -> int:
        """Take back up to ``points`` of what ``source`` earned. Points of it that expired are gone already
        and not taken again; the account is settled first, whether or not anything is left to reverse."""
        self.settle()
        earned, done = self.earned[source]
        expired = sum(lot.expired for lot in self.lots if lot.source == source)
        amount = min(points, earned - done - expired)
        if amount <= 0:
            return 0  # nothing left to reverse: no transaction
        own = [lot for lot in self.lots if lot.source == source and lot.remaining > 0]
        taken = self.take(own, amount)
        taken += self.take([lot for lot in self.lots if lot.source != source and lot.remaining > 0], amount - taken)
        self.available -= taken
        self.clawback -= amount - taken
        self.earned[source] = (earned, done + amount)
        return amount

    def open_lots(self) -> list[tuple[int, datetime]]:
        return sorted((lot.remaining, lot.expires_at or FAR) for lot in self.lots if lot.remaining > 0)


def reset(db: Database) -> None:
    if db.dialect == "postgresql":
        empty_postgres(db)
        return
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):  # ids restart at 1 (no AUTOINCREMENT)
            conn.execute(table.delete())


def machine_for(db: Database) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            clock.freeze(T0)
            reset(db)
            self.model = Model()
            self.n = 0
            with db.unit_of_work() as session:
                ws = workspaces.create_workspace(session, WorkspaceCreate(name="Ledger", slug="ledger",
                                                                          timezone="UTC", currency="EUR"))
                self.ws = ws.id
                program.update_settings(session, ws.id, {"return_window_days": 0}, actor="test")
                referrals.update_program(session, ws.id, ReferralProgramIn(
                    active=True, welcome_trigger="first_order", referrer_points=REFERRER_POINTS, max_per_day=10_000,
                    max_per_week=10_000, hold_existing_customers=False), actor="test")
                customer = Customer(workspace_id=ws.id, external_id="subject")
                session.add(customer)
                session.flush()
                self.customer = customer.id
                self.reward = rewards.create_reward(session, ws.id, RewardCreate(
                    name="Mug", kind=RewardKind.FREE_PRODUCT, sku="MUG", points_cost=REWARD_COST), actor="test").id
                self.code = referrals.ensure_code(session, ws.id, customer.id).code

        def next_id(self, prefix: str) -> str:
            self.n += 1
            return f"{prefix}{self.n}"

        # ---- operations --------------------------------------------------------------------------
        @rule(points=st.integers(1, 200), expires_in=st.none() | st.integers(1, 60))
        def earn(self, points: int, expires_in: int | None) -> None:
            source = self.next_id("order-")
            expires_at = None if expires_in is None else clock.utcnow() + timedelta(days=expires_in)
            with db.unit_of_work() as session:
                ledger.earn(session, self.ws, self.customer, points, source_type="order", source_id=source,
                            reason="order", actor="test", expires_at=expires_at)
            self.model.credit(points, expires_at=expires_at, source=f"order:{source}")

        @rule()
        def redeem(self) -> None:
            expected = self.model.debit(REWARD_COST)
            try:
                with db.unit_of_work() as session:
                    rewards.redeem(session, self.ws, self.customer, self.reward, request_id=self.next_id("r"),
                                   actor="test")
            except InsufficientPoints:
                assert not expected, "refused a redemption the balance covers"
                return
            assert expected, "redeemed more points than available"

        @precondition(lambda self: bool(self.model.earned))
        @rule(data=st.data(), points=st.integers(1, 150))
        def give_back(self, data: st.DataObject, points: int) -> None:
            """A return: take back (part of) what an earning gave."""
            source = data.draw(st.sampled_from(sorted(self.model.earned)))
            source_type, _, source_id = source.partition(":")
            with db.unit_of_work() as session:
                posted = ledger.reverse(session, self.ws, self.customer, source_type=source_type, source_id=source_id,
                                        points=points, reversal_id=self.next_id("return-"), reason="return",
                                        actor="test")
            amount = self.model.reverse(source, points)
            assert (posted is None) == (amount == 0)
            if posted is not None:
                assert posted.data["reversed"] == amount

        @rule(days=st.integers(1, 90))
        def time_passes(self, days: int) -> None:
            """Days go by; the expiry job runs."""
            clock.advance(timedelta(days=days))
            self.model.now = clock.utcnow()
            with db.unit_of_work() as session:
                maintenance.settle_due(session, self.ws)
            self.model.settle()

        @rule(points=st.integers(-100, 100).filter(bool))
        def adjust(self, points: int) -> None:
            expected = True
            if points > 0:
                self.model.credit(points, expires_at=None, source=None)
            else:
                expected = self.model.debit(-points)
            try:
                with db.unit_of_work() as session:
                    ledger.adjust(session, self.ws, self.customer, points, reason="by hand", actor="test",
                                  source_id=self.next_id("adj-"))
            except InsufficientPoints:
                assert not expected
                return
            assert expected

        @rule()
        def referral(self) -> None:
            """A friend signs up with the customer's code and orders: the referrer earns once the order's
            (empty) return window has passed."""
            with db.unit_of_work() as session:
                friend = Customer(workspace_id=self.ws, external_id=self.next_id("friend-"))
                session.add(friend)
                session.flush()
                referral, _ = referrals.attribute(session, self.ws, code=self.code, referred_id=friend.id, signals={},
                                                  actor="test")
                _, order = orders.upsert_order(session, self.ws, OrderIn.model_validate({
                    "external_id": self.next_id("friend-order-"), "customer_external_id": friend.external_id,
                    "placed_at": clock.utcnow().isoformat(),
                    "lines": [{"sku": "TEA", "unit_price": "25.00", "quantity": 1}]}), actor="test")
                referrals.on_order(session, self.ws, order_id=order.id, customer_id=friend.id, total=Decimal(25),
                                   placed_at=order.placed_at)
                assert referrals.reward_referrer(session, self.ws, referral.id)
                source = f"referral:{referral.id}"
            self.model.credit(REFERRER_POINTS, expires_at=None, source=source)

        # ---- what must hold after every step -------------------------------------------------------------
        @invariant()
        def matches_the_model(self) -> None:
            if not hasattr(self, "model"):
                return
            with db.unit_of_work(read_only=True) as session:
                balance = ledger.balance(session, self.ws, self.customer)
                lots = sorted((lot.remaining, lot.expires_at or FAR)
                              for lot in ledger.open_lots(session, self.ws, self.customer))
                findings = run_checks(session, domains.DOCTOR_CHECKS)
            assert (balance.available, balance.clawback_owed, balance.pending) == \
                (self.model.available, -self.model.clawback, 0)
            assert balance.available >= 0
            assert lots == self.model.open_lots()
            assert [f for f in findings if f.severity == "error"] == []

        def teardown(self) -> None:
            clock.unfreeze()

    return LedgerMachine


@pytest.mark.parametrize("examples, steps", [
    pytest.param(25, 20, id="25x20"),
    pytest.param(400, 50, id="400x50", marks=pytest.mark.soak),
])
def test_ledger_matches_its_model(db: Database, examples: int, steps: int) -> None:
    # make test: one fixed seed, the same examples every run; soak: a new one each run. Printed either way, and
    # PATRONAGE_LEDGER_SEED=<seed> replays a run (with the same examples and steps).
    chosen = int(os.environ.get("PATRONAGE_LEDGER_SEED") or (random.SystemRandom().randrange(2**32) if SOAK
                                                               else FIXED_SEED))
    print(f"ledger model: seed={chosen} examples={examples} steps={steps} (replay: PATRONAGE_LEDGER_SEED={chosen})")
    run_state_machine_as_test(seed(chosen)(machine_for(db)), settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, print_blob=True,
        database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        # make test: no shrinking (a failure prints its <= 20 steps and a blob at once); soak shrinks.
        phases=list(Phase) if SOAK else [Phase.explicit, Phase.reuse, Phase.generate]))


def test_the_model_encodes_the_rules() -> None:
    """The model is not vacuous: soonest-expiring lots are spent first, a reversal takes its own lot
    first and owes the rest, a refused debit changes nothing, later points repay the debt first."""
    model = Model()
    model.credit(50, expires_at=None, source="a")
    model.credit(50, expires_at=T0 + timedelta(days=5), source="b")
    assert model.debit(60)
    assert model.open_lots() == [(40, FAR)]
    assert not model.debit(41) and model.available == 40
    model.now = FAR
    assert model.reverse("b", 50) == 50  # its own lot is spent: 40 from the other lot, 10 owed
    assert (model.available, model.clawback) == (0, -10)
    model.credit(25, expires_at=None, source=None)
    assert (model.available, model.clawback) == (15, 0)
    model.credit(30, expires_at=FAR - timedelta(days=1), source="c")  # expires, then its order comes back:
    model.settle()
    assert model.reverse("c", 30) == 0 and model.available == 15  # expiry took it already; nothing else goes
