"""Consent service: record decisions as append-only evidence, derive the current state, double opt-in.

The state rows are a cache: for each (customer, channel, topic) they hold the decision
``consent_rules.current_decisions`` derives from the evidence, recomputed on every write.
Messaging domains call ``customer_can_message`` (or ``consent_rules.can_message`` with the states).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from patronage.customers.consent_repository import (
    ConsentEvidenceRepository,
    ConsentStateRepository,
    ConsentTopicRepository,
)
from patronage.customers.consent_rules import Channel, ConsentStatus, can_message, current_decisions
from patronage.customers.consent_schemas import ConsentConfirm, ConsentDecisionIn
from patronage.customers.models import ConsentEvidence, ConsentState
from patronage.customers.repository import CustomerRepository
from patronage.customers.service import get_customer, writable_customer
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import field_error
from patronage.kit.jobs import record_event
from patronage.kit.pagination import paginate_by_id
from patronage.kit.security import new_token, token_digest

CONFIRMATION_TTL = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=5)
TOKEN_PREFIX = "coi_"  # noqa: S105 - a prefix, not a secret  # nosec B105


def record_decision(
    session: Session, workspace_id: int, customer_id: int, data: ConsentDecisionIn, *, actor: str
) -> tuple[ConsentEvidence, ConsentState | None, str | None]:
    """Append one decision; returns (evidence, current state, confirmation token for double opt-in)."""
    customer = writable_customer(session, workspace_id, customer_id)
    topic = data.topic or ""
    if topic and ConsentTopicRepository(session, workspace_id).by_key(topic) is None:
        raise field_error("topic", f"no consent topic {topic!r} is defined; create it under /consent-topics")
    now = utcnow()
    occurred_at = data.occurred_at or now
    if occurred_at > now + CLOCK_SKEW:
        raise field_error("occurred_at", "a decision cannot be in the future")
    token: str | None = None
    status = ConsentStatus(data.status)
    if data.double_opt_in:
        status, token = ConsentStatus.PENDING, new_token(TOKEN_PREFIX)
    evidence = ConsentEvidenceRepository(session, workspace_id).new(
        customer_id=customer.id, channel=data.channel.value, topic=topic, status=status.value,
        source=data.source, text=data.text, text_version=data.text_version,
        ip=str(data.ip) if data.ip is not None else None, user_agent=data.user_agent,
        occurred_at=occurred_at, actor=actor,
        confirmation_digest=token_digest(token) if token else None,
        confirmation_expires_at=now + CONFIRMATION_TTL if token else None,
    )
    state = _after_decision(session, workspace_id, evidence, actor=actor)
    return evidence, state, token


def confirm(
    session: Session, workspace_id: int, data: ConsentConfirm, *, actor: str
) -> tuple[ConsentEvidence, ConsentState | None]:
    """Double opt-in: the customer confirmed a pending grant. Confirming twice returns the first result."""
    evidence_repo = ConsentEvidenceRepository(session, workspace_id)
    pending = evidence_repo.by_token_digest(token_digest(data.token))
    if pending is None:
        raise field_error("token", "unknown confirmation token", code="not_found")
    done = evidence_repo.confirmation_of(pending.id)
    if done is not None:
        return done, ConsentStateRepository(session, workspace_id).find(done.customer_id, done.channel, done.topic)
    now = utcnow()
    if pending.confirmation_expires_at is not None and pending.confirmation_expires_at < now:
        raise field_error("token", "this confirmation link has expired; ask the customer again", code="expired")
    writable_customer(session, workspace_id, pending.customer_id)
    evidence = evidence_repo.new(
        customer_id=pending.customer_id, channel=pending.channel, topic=pending.topic,
        status=ConsentStatus.GRANTED.value, source="double_opt_in", text=pending.text,
        text_version=pending.text_version, ip=str(data.ip) if data.ip is not None else None,
        user_agent=data.user_agent, occurred_at=data.occurred_at or now, actor=actor, confirms_id=pending.id,
    )
    return evidence, _after_decision(session, workspace_id, evidence, actor=actor)


def _after_decision(
    session: Session, workspace_id: int, evidence: ConsentEvidence, *, actor: str
) -> ConsentState | None:
    states = ConsentStateRepository(session, workspace_id)
    before = states.find(evidence.customer_id, evidence.channel, evidence.topic)
    previous = before.status if before is not None else None
    state = refresh_state(session, workspace_id, evidence.customer_id, evidence.channel, evidence.topic)
    audit(session, workspace_id=workspace_id, actor=actor, action="customer.consent_recorded",
          subject_type="customer", subject_id=evidence.customer_id,
          data={"evidence_id": evidence.id, "channel": evidence.channel, "topic": evidence.topic or None,
                "status": evidence.status})
    if state is not None and state.status != previous:
        record_event(session, workspace_id, "customer.consent_changed", {
            "customer_id": evidence.customer_id, "channel": state.channel, "topic": state.topic or None,
            "status": state.status, "previous": previous, "evidence_id": state.evidence_id,
        })
    return state


def refresh_state(
    session: Session, workspace_id: int, customer_id: int, channel: str, topic: str
) -> ConsentState | None:
    """Re-derive the cached state of one (customer, channel, topic) from all its evidence."""
    evidence = ConsentEvidenceRepository(session, workspace_id).for_key(customer_id, channel, topic)
    decision = current_decisions(evidence).get((channel, topic))
    states = ConsentStateRepository(session, workspace_id)
    state = states.find(customer_id, channel, topic, for_update=True)
    if decision is None:
        return state
    if state is None:
        return states.new(customer_id=customer_id, channel=channel, topic=topic, status=decision.status,
                          evidence_id=decision.id, occurred_at=decision.occurred_at)
    state.status, state.evidence_id, state.occurred_at = decision.status, decision.id, decision.occurred_at
    session.flush()
    return state


def rebuild_states(session: Session, workspace_id: int, customer_id: int) -> None:
    """Re-derive every cached state of a customer (after a merge brought in another's evidence)."""
    states = ConsentStateRepository(session, workspace_id)
    states.clear(customer_id)
    evidence = ConsentEvidenceRepository(session, workspace_id).all_for([customer_id])
    for (channel, topic), decision in current_decisions(evidence).items():
        states.new(customer_id=customer_id, channel=channel, topic=topic, status=decision.status,
                   evidence_id=decision.id, occurred_at=decision.occurred_at)


def withdraw_all(session: Session, workspace_id: int, customer_id: int, *, source: str, actor: str) -> int:
    """Withdraw every granted or pending consent (erasure); each withdrawal is evidence too."""
    states = ConsentStateRepository(session, workspace_id).for_customer(customer_id)
    evidence_repo = ConsentEvidenceRepository(session, workspace_id)
    now = utcnow()
    count = 0
    for state in states:
        if state.status == ConsentStatus.WITHDRAWN:
            continue
        evidence_repo.new(
            customer_id=customer_id, channel=state.channel, topic=state.topic, status=ConsentStatus.WITHDRAWN.value,
            source=source, occurred_at=max(now, state.occurred_at), actor=actor,
        )
        refresh_state(session, workspace_id, customer_id, state.channel, state.topic)
        count += 1
    return count


# ---- reads -----------------------------------------------------------------------------------------
def current_states(session: Session, workspace_id: int, customer_id: int) -> list[ConsentState]:
    get_customer(session, workspace_id, customer_id)
    return ConsentStateRepository(session, workspace_id).for_customer(customer_id)


def channel_permissions(states: list[ConsentState]) -> dict[str, bool]:
    return {channel.value: can_message(states, channel.value) for channel in Channel}


def list_evidence(
    session: Session, workspace_id: int, customer_id: int, *, cursor: str | None, limit: int | None
) -> tuple[list[ConsentEvidence], str | None]:
    get_customer(session, workspace_id, customer_id)
    stmt = ConsentEvidenceRepository(session, workspace_id).for_customer(customer_id)
    return paginate_by_id(session, stmt, ConsentEvidence.id, cursor=cursor, limit=limit)


def customer_can_message(
    session: Session, workspace_id: int, customer_id: int, channel: str, topic: str | None = None
) -> bool:
    """THE gate for every outgoing message: a live (not merged, not erased) profile with a matching
    granted consent. Merged-away profiles answer for their survivor."""
    customer = CustomerRepository(session, workspace_id).get(customer_id)
    seen = 0
    while customer is not None and customer.merged_into_id is not None and seen < 20:
        customer = CustomerRepository(session, workspace_id).get(customer.merged_into_id)
        seen += 1
    if customer is None or customer.erased_at is not None or customer.merged_into_id is not None:
        return False
    return can_message(ConsentStateRepository(session, workspace_id).for_customer(customer.id), channel, topic)
