"""Earning reacts to domain events: orders, status changes, returns, behavioural events, signups,
referrals; and, daily, birthdays and anniversaries. Backtest chunks run here too."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.earning import backtest, repository, rulesets, service
from patronage.earning.batch_award import award_orders
from patronage.kit.clock import utcnow
from patronage.kit.jobs import JobContext, batch_of, enqueue, on_event, periodic, task
from patronage.ledger.writer import program_for

# Customers see their points right after an order or a return: these run before the queue's default (100).
POINTS_PRIORITY = 20


@on_event("order.recorded", name="earning.order_recorded", priority=POINTS_PRIORITY)
def order_recorded(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    service.award_order(session, ctx.workspace_id, int(ctx.payload["payload"]["order_id"]))


@batch_of("earning.order_recorded")
def orders_recorded(session: Session, contexts: Sequence[JobContext]) -> None:
    """Several ``order.recorded`` jobs of one workspace: ``award_order`` for each, set-based."""
    workspace_id = contexts[0].workspace_id
    assert workspace_id is not None and all(c.workspace_id == workspace_id for c in contexts)
    award_orders(session, workspace_id, [int(c.payload["payload"]["order_id"]) for c in contexts])


@on_event("orders.imported", name="earning.orders_imported", priority=POINTS_PRIORITY)
def orders_imported(session: Session, ctx: JobContext) -> None:
    """A bulk import's chunk earns through the bulk replay (the same points ``order_recorded`` gives each
    order), unless the import said ``--no-earn``. Idempotent: orders that already earned are skipped."""
    from patronage.earning.replay import replay_orders
    from patronage.events.imported import earns, imported_orders

    assert ctx.workspace_id is not None
    p = ctx.payload["payload"]
    if not earns(p) or not rulesets.live_rules(session, ctx.workspace_id)[0].for_trigger("order"):
        return
    ids = [row.id for row in imported_orders(session, ctx.workspace_id, p)]
    # History: no points.earned per transaction (as the demo replay), so nothing fans out per order.
    replay_orders(session, ctx.workspace_id, order_ids=ids, actor="import")


@on_event("customers.imported", name="earning.customers_imported")
def customers_imported(session: Session, ctx: JobContext) -> None:
    """Profiles created by a bulk import get the ``signup`` trigger, as ``customer.created`` gives it,
    unless the import said ``--no-earn``."""
    from patronage.events.imported import earns, imported_customer_ids

    assert ctx.workspace_id is not None
    p = ctx.payload["payload"]
    doc, _ = rulesets.live_rules(session, ctx.workspace_id)
    if not earns(p) or not doc.for_trigger("signup"):
        return
    for customer_id in imported_customer_ids(p):
        customer = session.get(Customer, customer_id)
        if customer is None or customer.workspace_id != ctx.workspace_id:
            continue
        service.award_occurrence(session, ctx.workspace_id, customer_id, "signup", source_type="signup",
                                 source_id=str(customer_id), at=customer.signed_up_at or customer.created_at)


@on_event("order.status_changed", name="earning.order_status_changed", priority=POINTS_PRIORITY)
def order_status_changed(session: Session, ctx: JobContext) -> None:
    """Cancelled: take the order's points back. Out of ``pending``: the order earns now."""
    assert ctx.workspace_id is not None
    p = ctx.payload["payload"]
    if p.get("status") == "cancelled":
        service.cancel_order(session, ctx.workspace_id, int(p["customer_id"]), int(p["order_id"]))
    elif p.get("previous_status") == "pending":
        service.award_order(session, ctx.workspace_id, int(p["order_id"]))


@on_event("return.applied", name="earning.return_applied", priority=POINTS_PRIORITY)
def return_applied(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    service.reverse_return(session, ctx.workspace_id, ctx.payload["payload"])


@on_event("event.recorded", name="earning.event_recorded")
def event_recorded(session: Session, ctx: JobContext) -> None:
    """A behavioural event earns when a live rule has its type as trigger (review_posted, ...)."""
    assert ctx.workspace_id is not None
    p = ctx.payload["payload"]
    doc, _ = rulesets.live_rules(session, ctx.workspace_id)
    if not doc.for_trigger(p["type"]):
        return
    event = repository.behaviour_event(session, ctx.workspace_id, int(p["event_id"]))
    if event is None:
        return
    service.award_occurrence(session, ctx.workspace_id, event.customer_id, event.type, source_type="event",
                             source_id=str(event.id), at=event.occurred_at, properties=dict(event.properties or {}))


@on_event("customer.created", name="earning.customer_created")
def customer_created(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    if rulesets.live_rules(session, ctx.workspace_id)[0].for_trigger("signup"):  # most programs have none
        _award_signup(session, ctx.workspace_id, int(ctx.payload["payload"]["customer_id"]))


@batch_of("earning.customer_created")
def customers_created(session: Session, contexts: Sequence[JobContext]) -> None:
    """Several signups of one workspace: one look-up of the live rules, then each signup as alone."""
    workspace_id = contexts[0].workspace_id
    assert workspace_id is not None and all(c.workspace_id == workspace_id for c in contexts)
    if not rulesets.live_rules(session, workspace_id)[0].for_trigger("signup"):
        return
    for ctx in contexts:
        _award_signup(session, workspace_id, int(ctx.payload["payload"]["customer_id"]))


def _award_signup(session: Session, workspace_id: int, customer_id: int) -> None:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        return
    service.award_occurrence(session, workspace_id, customer_id, "signup", source_type="signup",
                             source_id=str(customer_id), at=customer.signed_up_at or customer.created_at)


@on_event("referral.converted", name="earning.referral_converted")
def referral_converted(session: Session, ctx: JobContext) -> None:
    """The ``referral`` trigger, for the referrer (on top of the referral program's own reward)."""
    assert ctx.workspace_id is not None
    p = ctx.payload["payload"]
    service.award_occurrence(session, ctx.workspace_id, int(p["referrer_id"]), "referral", source_type="referral",
                             source_id=str(p["referral_id"]),
                             properties={"referred_id": p.get("referred_id"), "order_id": p.get("order_id")})


@periodic("earning.calendar", "30 0 * * *")
def calendar_triggers(session: Session, ctx: JobContext) -> None:
    """Birthdays and sign-up anniversaries of today (workspace time zone); 29 Feb counts on 28 Feb."""
    assert ctx.workspace_id is not None
    ws = ctx.workspace_id
    doc, _ = rulesets.live_rules(session, ws)
    wants_birthday, wants_anniversary = bool(doc.for_trigger("birthday")), bool(doc.for_trigger("anniversary"))
    if not (wants_birthday or wants_anniversary):
        return
    tz = ZoneInfo(program_for(session, ws).timezone)
    now = utcnow()
    today = now.astimezone(tz).date()
    if wants_birthday:
        for customer_id in repository.born_on(session, ws, today):
            service.award_occurrence(session, ws, customer_id, "birthday", source_type="birthday",
                                     source_id=str(today.year), at=now)
    if wants_anniversary:
        for customer_id, years in repository.signed_up_on(session, ws, today, tz):
            service.award_occurrence(session, ws, customer_id, "anniversary", source_type="anniversary",
                                     source_id=str(today.year), at=now, properties={"years": years})


@task(backtest.TASK, lease_seconds=900, max_attempts=3)
def run_backtest(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None
    backtest_id = int(ctx.payload["backtest_id"])
    try:
        more = backtest.run_chunk(session, ctx.workspace_id, backtest_id)
    except Exception as exc:  # a failed backtest is reported on its row, not retried forever
        session.rollback()
        backtest.fail(session, ctx.workspace_id, backtest_id, f"{type(exc).__name__}: {exc}")
        return
    if more:
        enqueue(session, backtest.TASK, {"backtest_id": backtest_id}, workspace_id=ctx.workspace_id)
