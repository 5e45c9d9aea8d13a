"""Read models for the referral routes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from patronage.kit.errors import NotFound
from patronage.kit.pagination import paginate_by_id
from patronage.referrals import repository as repo
from patronage.referrals import service
from patronage.referrals.models import Referral, ReferralCode
from patronage.referrals.schemas import CustomerReferralOut, ReferralCodeOut, ReferralProgramOut, ReferralStats


def program_out(session: Session, workspace_id: int) -> ReferralProgramOut:
    settings = service.program(session, workspace_id)
    return ReferralProgramOut(**settings.model_dump(),
                              return_window_days=service.return_window_days(session, workspace_id))


def code_out(row: ReferralCode, base_url: str) -> ReferralCodeOut:
    return ReferralCodeOut(customer_id=row.customer_id, code=row.code, link=service.referral_link(base_url, row.code),
                           invites_sent=row.invites_sent, clicks=row.clicks)


def get_referral(session: Session, workspace_id: int, referral_id: int) -> Referral:
    return repo.ReferralRepository(session, workspace_id).get_or_404(referral_id)


def list_referrals(
    session: Session, workspace_id: int, *, status: str | None, referrer_id: int | None, cursor: str | None,
    limit: int | None,
) -> tuple[list[Referral], str | None]:
    stmt = repo.ReferralRepository(session, workspace_id).listing(status=status, referrer_id=referrer_id)
    return paginate_by_id(session, stmt, Referral.id, cursor=cursor, limit=limit)


def customer_referral(session: Session, workspace_id: int, customer_id: int, base_url: str) -> CustomerReferralOut:
    if repo.customer(session, workspace_id, customer_id) is None:
        raise NotFound(f"customer {customer_id} not found")
    row = service.code_of(session, workspace_id, customer_id)
    return CustomerReferralOut(
        customer_id=customer_id,
        code=code_out(row, base_url) if row else None,
        referred_by=service.referred_by(session, workspace_id, customer_id),
        stats=ReferralStats(**service.stats(session, workspace_id, customer_id)),
    )
