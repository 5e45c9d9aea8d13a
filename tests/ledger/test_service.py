"""Ledger service flows on SQLite and PostgreSQL; ``patronage doctor`` passes after each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from patronage.kit import clock
from patronage.kit.db import Database
from patronage.kit.errors import NotFound, ValidationFailed
from patronage.kit.jobs.models import DomainEvent
from patronage.ledger import maintenance, service
from patronage.ledger.errors import InsufficientPoints, SourceConflict
from patronage.ledger.models import LedgerEntry, LedgerTransaction
from tests.conftest import Tenant, make_tenant
from tests.ledger.conftest import assert_doctor_ok, make_customer, set_program

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def earn(db: Database, ws: int, customer: int, points: int, source: str, **kw: object) -> LedgerTransaction:
    with db.unit_of_work() as s:
        return service.earn(s, ws, customer, points, source_type="order", source_id=source, reason="order",
                            actor="system", **kw)  # type: ignore[arg-type]


def spend(db: Database, ws: int, customer: int, points: int, source: str) -> LedgerTransaction:
    with db.unit_of_work() as s:
        return service.spend(s, ws, customer, points, source_type="reward", source_id=source, reason="reward",
                             actor="member:1")


def bal(db: Database, ws: int, customer: int, days: int = 30) -> service.Balance:
    with db.unit_of_work(read_only=True) as s:
        return service.balance(s, ws, customer, expiring_within_days=days)


def events(db: Database, type_: str) -> list[dict]:
    with db.unit_of_work(read_only=True) as s:
        stmt = select(DomainEvent).where(DomainEvent.type == type_).order_by(DomainEvent.id)
        return [e.payload for e in s.scalars(stmt)]


def test_pending_points_become_available_when_the_window_closes(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    clock.freeze(T0)
    earn(db, ws, customer, 120, "o1", pending_until=T0 + timedelta(days=30))
    b = bal(db, ws, customer)
    assert (b.available, b.pending, b.lifetime_earned) == (0, 120, 120)
    assert events(db, "points.earned")[0]["is_pending"] is True
    clock.advance(timedelta(days=29))
    with db.unit_of_work() as s:
        assert maintenance.settle_due(s, ws) == 0
    clock.advance(timedelta(days=1, seconds=1))
    with db.unit_of_work() as s:
        assert maintenance.settle_due(s, ws) == 1
    b = bal(db, ws, customer)
    assert (b.available, b.pending) == (120, 0)
    with db.unit_of_work() as s:  # running again posts nothing more
        maintenance.settle_due(s, ws)
        kinds = s.scalars(select(LedgerTransaction.kind).order_by(LedgerTransaction.id)).all()
    assert kinds == ["earn", "release"]
    assert_doctor_ok(db)


def test_earn_is_idempotent_by_source(db: Database, tenant: Tenant, customer: int) -> None:
    first = earn(db, tenant.workspace_id, customer, 50, "o1")
    again = earn(db, tenant.workspace_id, customer, 50, "o1")
    assert again.id == first.id
    assert bal(db, tenant.workspace_id, customer).available == 50
    with db.unit_of_work(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 2
    assert_doctor_ok(db)


def test_spending_consumes_soonest_expiring_lots_first(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    set_program(db, ws, expiry_policy="after_earning", expiry_months=12)
    clock.freeze(T0)
    earn(db, ws, customer, 100, "old", earned_at=T0 - timedelta(days=300))  # expires in ~65 days
    earn(db, ws, customer, 100, "new", earned_at=T0 - timedelta(days=10))
    spend(db, ws, customer, 150, "r1")
    with db.unit_of_work(read_only=True) as s:
        lots = service.open_lots(s, ws, customer)
    assert [(lot.remaining, lot.amount) for lot in lots] == [(50, 100)]
    assert bal(db, ws, customer).available == 50
    assert_doctor_ok(db)


def test_insufficient_points_unless_the_workspace_allows_debt(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    earn(db, ws, customer, 40, "o1")
    with pytest.raises(InsufficientPoints) as info:
        spend(db, ws, customer, 50, "r1")
    assert info.value.status == 409 and info.value.code == "insufficient_points"
    set_program(db, ws, allow_negative_balance=True)
    spend(db, ws, customer, 50, "r1")
    assert bal(db, ws, customer).available == -10
    earn(db, ws, customer, 30, "o2")  # covers the overdraft first
    assert bal(db, ws, customer).available == 20
    assert_doctor_ok(db)


def test_spend_is_idempotent_and_rejects_a_different_amount(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    earn(db, ws, customer, 100, "o1")
    first = spend(db, ws, customer, 30, "r1")
    assert spend(db, ws, customer, 30, "r1").id == first.id
    with pytest.raises(SourceConflict):
        spend(db, ws, customer, 31, "r1")
    assert bal(db, ws, customer).available == 70


def test_expiry_job_posts_expiry_and_warns_ahead(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    set_program(db, ws, expiry_policy="after_earning", expiry_months=12, expiry_warning_days=14)
    clock.freeze(T0)
    earn(db, ws, customer, 80, "o1")
    earn(db, ws, customer, 20, "o2", earned_at=T0 + timedelta(days=40))
    clock.freeze(T0 + timedelta(days=360))  # ~5 days before the first lot's expiry
    with db.unit_of_work() as s:
        assert maintenance.warn_expiring(s, ws) == 1
        assert maintenance.warn_expiring(s, ws) == 0  # once per lot
    warning = events(db, "points.expiring_soon")[0]
    assert warning["points"] == 80 and warning["customer_id"] == customer
    assert bal(db, ws, customer, days=10).expiring_soon == 80
    clock.freeze(T0 + timedelta(days=367))
    with db.unit_of_work() as s:
        maintenance.settle_due(s, ws)
    b = bal(db, ws, customer)
    assert (b.available, b.lifetime_expired) == (20, 80)
    assert events(db, "points.expired")[0]["points"] == -80
    assert_doctor_ok(db)


def test_inactivity_expiry_takes_everything_after_months_without_activity(
    db: Database, tenant: Tenant, customer: int
) -> None:
    ws = tenant.workspace_id
    set_program(db, ws, expiry_policy="after_inactivity", expiry_months=6)
    clock.freeze(T0)
    earn(db, ws, customer, 60, "o1")
    clock.freeze(T0 + timedelta(days=100))
    earn(db, ws, customer, 40, "o2")  # activity moves the deadline
    clock.freeze(T0 + timedelta(days=200))
    with db.unit_of_work() as s:
        maintenance.settle_due(s, ws)
    assert bal(db, ws, customer).available == 100
    b = bal(db, ws, customer, days=365)
    assert b.next_expiry_at is not None and b.expiring_soon == 100
    clock.freeze(T0 + timedelta(days=100 + 185))
    with db.unit_of_work() as s:
        maintenance.settle_due(s, ws)
    assert bal(db, ws, customer).available == 0
    assert_doctor_ok(db)


@pytest.mark.parametrize(
    ("policy", "available", "owed", "reversed_points"),
    [("claw_back", 0, 60, -100), ("negative_balance", -60, 0, -100), ("write_off", 0, 0, -40)],
)
def test_reversal_of_spent_points_follows_the_policy(
    db: Database, tenant: Tenant, customer: int, policy: str, available: int, owed: int, reversed_points: int
) -> None:
    ws = tenant.workspace_id
    set_program(db, ws, reversal_shortfall=policy)
    earn(db, ws, customer, 100, "o1")
    spend(db, ws, customer, 60, "r1")
    with db.unit_of_work() as s:
        txn = service.reverse(s, ws, customer, source_type="order", source_id="o1", reason="returned",
                              actor="system")
    assert txn is not None and txn.points == reversed_points
    b = bal(db, ws, customer)
    assert (b.available, b.clawback_owed) == (available, owed)
    earn(db, ws, customer, 100, "o2")
    b = bal(db, ws, customer)
    assert b.available == 100 - owed + min(available, 0) and b.clawback_owed == 0
    assert_doctor_ok(db)


def test_partial_reversals_are_exact_capped_and_idempotent(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    earn(db, ws, customer, 100, "o1", pending_until=datetime.now(UTC) + timedelta(days=30))

    def rev(points: int | None, rid: str | None) -> LedgerTransaction | None:
        with db.unit_of_work() as s:
            return service.reverse(s, ws, customer, source_type="order", source_id="o1", points=points,
                                   reversal_id=rid, reason="return", actor="system")

    a = rev(30, "ret-1")
    assert a is not None and a.points == -30
    assert rev(30, "ret-1").id == a.id  # type: ignore[union-attr]
    b = rev(90, "ret-2")  # capped at what is left
    assert b is not None and b.points == -70
    assert rev(None, None) is None  # nothing left to reverse
    assert bal(db, ws, customer).pending == 0
    with db.unit_of_work() as s:
        assert service.reverse(s, ws, customer, source_type="order", source_id="nope", reason="x",
                               actor="system") is None
    assert_doctor_ok(db)


def test_refunding_a_spend_restores_the_lots_expiry(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    set_program(db, ws, expiry_policy="after_earning", expiry_months=12)
    earn(db, ws, customer, 100, "o1")
    spend(db, ws, customer, 100, "r1")
    with db.unit_of_work() as s:
        txn = service.reverse(s, ws, customer, source_type="reward", source_id="r1", points=40,
                              reversal_id="cancel", reason="coupon cancelled", actor="system")
        assert txn is not None and txn.points == 40
        lots = service.open_lots(s, ws, customer)
    b = bal(db, ws, customer)
    assert (b.available, b.lifetime_spent) == (40, 60)
    assert lots[0].expires_at is not None
    assert_doctor_ok(db)


def test_adjustments_need_a_reason_and_are_idempotent(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as s:
        a = service.adjust(s, ws, customer, 25, reason="goodwill", actor="user:1", source_id="adj-1")
        assert service.adjust(s, ws, customer, 25, reason="goodwill", actor="user:1", source_id="adj-1").id == a.id
        with pytest.raises(SourceConflict):
            service.adjust(s, ws, customer, 26, reason="goodwill", actor="user:1", source_id="adj-1")
        with pytest.raises(ValidationFailed):
            service.adjust(s, ws, customer, 5, reason=" ", actor="user:1", source_id="adj-2")
        service.adjust(s, ws, customer, -10, reason="correction", actor="user:1", source_id="adj-3")
        with pytest.raises(InsufficientPoints):
            service.adjust(s, ws, customer, -100, reason="too much", actor="user:1", source_id="adj-4")
    b = bal(db, ws, customer)
    assert (b.available, b.lifetime_adjusted) == (15, 15)
    assert_doctor_ok(db)


def test_customers_of_another_workspace_are_not_found(db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = make_customer(db, other_tenant.workspace_id, "theirs")
    with db.unit_of_work() as s, pytest.raises(NotFound):
        service.earn(s, tenant.workspace_id, theirs, 10, source_type="order", source_id="x", reason="r",
                     actor="system")
    with db.unit_of_work() as s, pytest.raises(NotFound):
        service.balance(s, tenant.workspace_id, theirs)


def test_merge_moves_points_as_new_transactions(db: Database, tenant: Tenant) -> None:
    ws = tenant.workspace_id
    a, b = make_customer(db, ws, "a"), make_customer(db, ws, "b")
    set_program(db, ws, expiry_policy="after_earning", expiry_months=12)
    earn(db, ws, a, 70, "o1")
    earn(db, ws, a, 30, "o2", pending_until=datetime.now(UTC) + timedelta(days=5))
    earn(db, ws, b, 10, "o3")
    with db.unit_of_work() as s:
        maintenance.merge_accounts(s, ws, a, b, actor="user:1")
        maintenance.merge_accounts(s, ws, a, b, actor="user:1")  # nothing left: no-op
    assert (bal(db, ws, a).available, bal(db, ws, a).pending) == (0, 0)
    merged = bal(db, ws, b)
    assert (merged.available, merged.pending) == (80, 30)
    assert_doctor_ok(db)


def test_concurrent_spends_never_overdraw(db: Database, tenant: Tenant, customer: int, backend: str) -> None:
    import threading

    ws = tenant.workspace_id
    earn(db, ws, customer, 100, "o1")
    errors: list[Exception] = []

    def attempt(i: int) -> None:
        try:
            spend(db, ws, customer, 30, f"r{i}")
        except InsufficientPoints as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 3
    assert bal(db, ws, customer).available == 10
    assert_doctor_ok(db)


def test_a_second_workspace_is_untouched(db: Database, tenant: Tenant) -> None:
    other = make_tenant(db, "third")
    c = make_customer(db, other.workspace_id, "x")
    earn(db, other.workspace_id, c, 10, "o1")
    assert bal(db, other.workspace_id, c).available == 10


def test_points_that_expired_are_not_clawed_back_by_a_late_return(
    db: Database, tenant: Tenant, customer: int
) -> None:
    ws = tenant.workspace_id
    set_program(db, ws, expiry_policy="after_earning", expiry_months=1)
    clock.freeze(T0)
    earn(db, ws, customer, 100, "o1")
    spend(db, ws, customer, 30, "r1")
    clock.freeze(T0 + timedelta(days=40))  # the other 70 expired
    with db.unit_of_work() as s:
        txn = service.reverse(s, ws, customer, source_type="order", source_id="o1", reason="late return",
                              actor="system")
    assert txn is not None and txn.points == -30  # only what was spent is owed, not what expired
    b = bal(db, ws, customer)
    assert (b.available, b.clawback_owed, b.lifetime_expired) == (0, 30, 70)
    assert_doctor_ok(db)


def test_repeats_inside_one_transaction_return_the_first_earning(db: Database, tenant: Tenant, customer: int) -> None:
    ws = tenant.workspace_id
    with db.unit_of_work() as s:
        service.lock_account(s, ws, customer)
        assert service.find_earning(s, ws, customer, "order", "o1") is None
        first = service.earn(s, ws, customer, 10, source_type="order", source_id="o1", reason="r", actor="system")
        again = service.earn(s, ws, customer, 10, source_type="order", source_id="o1", reason="r", actor="system")
        assert again.id == first.id
        assert service.find_earning(s, ws, customer, "order", "o1") is first
    assert bal(db, ws, customer).available == 10
