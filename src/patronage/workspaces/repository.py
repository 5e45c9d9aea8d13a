"""Queries for workspaces and access. Token look-ups are the only unscoped queries: they find the tenant."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.kit.repository import WorkspaceRepository
from patronage.workspaces.models import ApiKey, Membership, StaffSession, User, Workspace


def get_workspace(session: Session, workspace_id: int) -> Workspace | None:
    return session.get(Workspace, workspace_id)


def get_workspace_by_slug(session: Session, slug: str) -> Workspace | None:
    return session.scalars(select(Workspace).where(Workspace.slug == slug)).one_or_none()


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def find_api_key(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


def find_staff_session(session: Session, token_hash: str) -> StaffSession | None:
    return session.scalars(select(StaffSession).where(StaffSession.token_hash == token_hash)).one_or_none()


def memberships_of(session: Session, user_id: int) -> list[Membership]:
    stmt = select(Membership).where(Membership.user_id == user_id).order_by(Membership.id)
    return list(session.scalars(stmt))


class MembershipRepository(WorkspaceRepository[Membership]):
    model = Membership

    def for_user(self, user_id: int) -> Membership | None:
        return self.session.scalars(self.select().where(Membership.user_id == user_id)).one_or_none()

    def list(self) -> list[Membership]:
        return list(self.session.scalars(self.select().order_by(Membership.id)))


class ApiKeyRepository(WorkspaceRepository[ApiKey]):
    model = ApiKey

    def list(self) -> list[ApiKey]:
        return list(self.session.scalars(self.select().order_by(ApiKey.id.desc())))


class StaffSessionRepository(WorkspaceRepository[StaffSession]):
    model = StaffSession
