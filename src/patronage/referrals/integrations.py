"""Referrals in the customers domain: GDPR export and erasure, and merges."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.gdpr import register_eraser, register_exporter
from patronage.customers.merge import register_merge_handler
from patronage.referrals import repository as repo


def export_customer(session: Session, workspace_id: int, customer_id: int) -> dict[str, Any]:
    code = repo.CodeRepository(session, workspace_id).for_customer(customer_id)
    referrals = repo.ReferralRepository(session, workspace_id)
    made = session.scalars(referrals.listing(referrer_id=customer_id))
    received = referrals.for_referred(customer_id)
    return {
        "code": None if code is None else {"code": code.code, "invites_sent": code.invites_sent,
                                           "clicks": code.clicks, "signals": code.signals},
        "referred": [{"id": r.id, "referred_id": r.referred_id, "status": r.status, "signed_up_at": r.signed_up_at}
                     for r in made],
        "referred_by": None if received is None else {
            "id": received.id, "referrer_id": received.referrer_id, "status": received.status,
            "signals": received.signals, "signed_up_at": received.signed_up_at},
    }


def erase_customer(session: Session, workspace_id: int, customer_id: int) -> None:
    code = repo.CodeRepository(session, workspace_id).for_customer(customer_id)
    if code is not None:
        code.signals = {}
    repo.ReferralRepository(session, workspace_id).scrub(customer_id)
    session.flush()


def merge_customer(session: Session, workspace_id: int, from_customer_id: int, into_customer_id: int, *,
                   actor: str = "system") -> None:
    """Referrals the duplicate made become the survivor's. Its code moves over when the survivor has none
    (else links to it still work: attribution follows the merge). Its own referral (as the referred
    customer) moves over when the survivor was not referred."""
    referrals = repo.ReferralRepository(session, workspace_id)
    referrals.repoint_referrer(from_customer_id, into_customer_id)
    codes = repo.CodeRepository(session, workspace_id)
    code = codes.for_customer(from_customer_id)
    if code is not None and codes.for_customer(into_customer_id) is None:
        code.customer_id = into_customer_id
    received = referrals.for_referred(from_customer_id)
    if received is not None and referrals.for_referred(into_customer_id) is None:
        received.referred_id = into_customer_id
    own = referrals.for_referred(into_customer_id)
    if own is not None and own.referrer_id == into_customer_id and own.status != "rejected":
        own.status, own.decided_by, own.decision_note = "rejected", actor, "referrer and referred were merged"
    session.flush()


def register() -> None:
    register_exporter("referrals", export_customer)
    register_eraser("referrals", erase_customer)
    register_merge_handler("referrals", merge_customer)
