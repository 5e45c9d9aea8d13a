"""Magic-link sign-in. Requests never reveal whether an email is known; links are single-use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patronage.config import Settings
from patronage.customers.resolution import find_customer_id
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Unauthenticated
from patronage.kit.mail import queue_email
from patronage.kit.security import new_token, token_digest
from patronage.members.models import MagicLink, MemberSession
from patronage.workspaces.auth import MEMBER_TOKEN_PREFIX
from patronage.workspaces.models import Workspace

# (session, workspace, customer id, link, minutes valid) -> (subject, text, html or None)
MagicLinkMail = Callable[[Session, Workspace, int, str, int], tuple[str, str, str | None]]


def plain_magic_link_mail(
    session: Session, workspace: Workspace, customer_id: int, link: str, minutes: int
) -> tuple[str, str, str | None]:
    text = f"Sign in to {workspace.name}: {link}\n\nThe link works once and expires in {minutes} minutes."
    return f"Your sign-in link for {workspace.name}", text, None


def request_magic_link(
    session: Session, settings: Settings, workspace: Workspace, email: str, *, ip: str | None,
    compose: MagicLinkMail | None = None,
) -> str | None:
    """Email a sign-in link if ``email`` belongs to a member; returns the token (for tests) or None.

    ``compose`` writes the message (the portal passes its branded, translated one); default plain text."""
    normalised = email.strip().lower()
    customer_id = find_customer_id(session, workspace.id, "email", normalised)
    if customer_id is None:
        return None
    token = new_token(nbytes=32)
    session.add(
        MagicLink(
            workspace_id=workspace.id,
            customer_id=customer_id,
            token_hash=token_digest(token),
            expires_at=utcnow() + timedelta(minutes=settings.magic_link_ttl_minutes),
            requested_ip=ip,
        )
    )
    link = f"{settings.base_url}/portal/{workspace.slug}/auth/{token}"
    subject, text, html = (compose or plain_magic_link_mail)(
        session, workspace, customer_id, link, settings.magic_link_ttl_minutes
    )
    queue_email(session, workspace.id, to=normalised, subject=subject, text=text, html=html)
    return token


def consume_magic_link(
    session: Session, settings: Settings, workspace_id: int, token: str
) -> tuple[MemberSession, str]:
    """Trade a link for a member session. An atomic conditional UPDATE makes the link single-use."""
    now = utcnow()
    digest = token_digest(token)
    used = session.execute(
        update(MagicLink)
        .where(
            MagicLink.workspace_id == workspace_id,
            MagicLink.token_hash == digest,
            MagicLink.used_at.is_(None),
            MagicLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(MagicLink.customer_id)
    ).scalar_one_or_none()
    if used is None:
        raise Unauthenticated("this sign-in link is invalid, expired or already used; request a new one")
    secret = new_token(MEMBER_TOKEN_PREFIX)
    member_session = MemberSession(
        workspace_id=workspace_id,
        customer_id=used,
        token_hash=token_digest(secret),
        csrf_token=new_token(nbytes=24),
        expires_at=now + timedelta(days=settings.member_session_ttl_days),
    )
    session.add(member_session)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=f"member:{used}", action="member.signed_in",
          subject_type="customer", subject_id=used)
    return member_session, secret


def find_member_session(session: Session, token: str) -> MemberSession | None:
    stmt = select(MemberSession).where(MemberSession.token_hash == token_digest(token))
    found = session.scalars(stmt).one_or_none()
    if found is None or found.revoked_at is not None or found.expires_at <= utcnow():
        return None
    return found


def end_member_session(session: Session, member_session: MemberSession) -> None:
    member_session.revoked_at = utcnow()
