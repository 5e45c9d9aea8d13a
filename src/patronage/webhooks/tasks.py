"""Webhook jobs: fan every domain event out to deliveries, and deliver each one with retries."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.config import get_settings
from patronage.kit.jobs import JobContext, RecordedFailure, on_event, task
from patronage.kit.jobs.backoff import schedule_backoff
from patronage.webhooks import sender, service, subscriptions

# Seconds before each retry: nine retries spread over about 24 hours (30 s ... 8 h; 85,350 s in all),
# so a receiver down for a night still gets everything. Then the job is dead and the delivery failed.
RETRY_DELAYS: list[float] = [30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800, 28_800]
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


@on_event("*", name="webhooks.fan_out", wants=subscriptions.wants)
def fan_out(session: Session, ctx: JobContext) -> None:
    if ctx.workspace_id is not None:
        service.fan_out(session, ctx.workspace_id, int(ctx.payload["event_id"]))


@task(service.DELIVER_TASK, max_attempts=MAX_ATTEMPTS, backoff=schedule_backoff(RETRY_DELAYS))
def deliver(session: Session, ctx: JobContext) -> None:
    assert ctx.workspace_id is not None, "deliveries are always enqueued with their workspace"
    delivery_id = int(ctx.payload["delivery_id"])
    request = service.prepare_attempt(session, ctx.workspace_id, delivery_id)
    if request is None:
        return  # nothing to send; what prepare_attempt logged commits with the job
    # Only reads so far: end the transaction before waiting on the network, so no lock or connection
    # is held meanwhile (on SQLite a write transaction holds the database's single write lock).
    session.rollback()
    outcome = sender.send(request, timeout=get_settings().webhook_timeout_seconds)
    final = ctx.attempt >= ctx.max_attempts
    service.record_attempt(session, ctx.workspace_id, delivery_id, outcome, final=final)
    if not outcome.ok:
        # The attempt's log row commits together with the retry (or the burial when ``final``).
        raise RecordedFailure(outcome.summary())
