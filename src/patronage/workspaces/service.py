"""Business rules for workspaces, staff, API keys and sessions. Never commits (the caller's boundary does)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, Forbidden, NotFound, Unauthenticated, field_error
from patronage.kit.security import (
    DUMMY_PASSWORD_HASH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)
from patronage.workspaces import repository as repo
from patronage.workspaces.models import ApiKey, Membership, StaffSession, User, Workspace
from patronage.workspaces.permissions import DEFAULT_API_KEY_SCOPES, Permission, Role, can_grant, permissions_for
from patronage.workspaces.schemas import WorkspaceCreate, WorkspaceUpdate

API_KEY_PREFIX = "pat_"
SESSION_TOKEN_BYTES = 32


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_workspace(session: Session, data: WorkspaceCreate, *, actor: str = "system") -> Workspace:
    if repo.get_workspace_by_slug(session, data.slug) is not None:
        raise Conflict(f"workspace slug {data.slug!r} is taken", reason="slug_taken")
    workspace = Workspace(**data.model_dump())
    session.add(workspace)
    session.flush()
    audit(session, workspace_id=workspace.id, actor=actor, action="workspace.created",
          subject_type="workspace", subject_id=workspace.id, data=data.model_dump())
    return workspace


def update_workspace(session: Session, workspace: Workspace, data: WorkspaceUpdate, *, actor: str) -> Workspace:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(workspace, field, value)
    session.flush()
    from patronage.workspaces.auth import forget_workspaces  # auth imports this module

    forget_workspaces(session)  # API keys' cached snapshots of the workspace (GET /workspace)
    audit(session, workspace_id=workspace.id, actor=actor, action="workspace.updated",
          subject_type="workspace", subject_id=workspace.id, data=changes)
    return workspace


def create_user(session: Session, *, email: str, password: str, name: str = "") -> User:
    email = normalise_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise field_error("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if repo.get_user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists")
    user = User(email=email, name=name, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def add_member(session: Session, workspace_id: int, user: User, role: Role, *, actor: str) -> Membership:
    members = repo.MembershipRepository(session, workspace_id)
    if members.for_user(user.id) is not None:
        raise Conflict(f"{user.email} is already a member of this workspace")
    membership = members.new(user_id=user.id, role=role.value)
    audit(session, workspace_id=workspace_id, actor=actor, action="staff.added",
          subject_type="user", subject_id=user.id, data={"role": role.value})
    return membership


def add_staff(
    session: Session, workspace_id: int, *, email: str, name: str, password: str, role: Role,
    actor: str, actor_permissions: frozenset[str],
) -> Membership:
    if not can_grant(actor_permissions, frozenset(permissions_for(role))):
        raise Forbidden(f"you cannot grant the {role.value} role")
    user = repo.get_user_by_email(session, normalise_email(email))
    if user is None:
        user = create_user(session, email=email, password=password, name=name)
    return add_member(session, workspace_id, user, role, actor=actor)


def change_role(
    session: Session, workspace_id: int, user_id: int, role: Role, *, actor: str,
    actor_permissions: frozenset[str],
) -> Membership:
    members = repo.MembershipRepository(session, workspace_id)
    membership = members.for_user(user_id)
    if membership is None:
        raise NotFound(f"staff member {user_id} not found")
    if not can_grant(actor_permissions, frozenset(permissions_for(role))):
        raise Forbidden(f"you cannot grant the {role.value} role")
    _check_ownership_change(membership, actor_permissions)
    _keep_an_owner(members, membership, new_role=role)
    before = membership.role
    membership.role = role.value
    audit(session, workspace_id=workspace_id, actor=actor, action="staff.role_changed",
          subject_type="user", subject_id=user_id, data={"from": before, "to": role.value})
    return membership


def remove_staff(
    session: Session, workspace_id: int, user_id: int, *, actor: str, actor_permissions: frozenset[str]
) -> None:
    members = repo.MembershipRepository(session, workspace_id)
    membership = members.for_user(user_id)
    if membership is None:
        raise NotFound(f"staff member {user_id} not found")
    _check_ownership_change(membership, actor_permissions)
    _keep_an_owner(members, membership, new_role=None)
    session.delete(membership)
    audit(session, workspace_id=workspace_id, actor=actor, action="staff.removed",
          subject_type="user", subject_id=user_id, data={"role": membership.role})


def _check_ownership_change(membership: Membership, actor_permissions: frozenset[str]) -> None:
    if membership.role == Role.OWNER and Permission.OWNERSHIP_MANAGE not in actor_permissions:
        raise Forbidden("only an owner can change or remove an owner")


def _keep_an_owner(members: repo.MembershipRepository, membership: Membership, new_role: Role | None) -> None:
    if membership.role != Role.OWNER or new_role == Role.OWNER:
        return
    owners = [m for m in members.list() if m.role == Role.OWNER]
    if len(owners) <= 1:
        raise Conflict("a workspace must keep at least one owner", reason="last_owner")


def check_password(session: Session, email: str, password: str) -> User:
    user = repo.get_user_by_email(session, normalise_email(email))
    if user is None or not user.is_active:
        verify_password(DUMMY_PASSWORD_HASH, password)  # same cost either way: no user enumeration
        raise Unauthenticated("email or password is wrong")
    if not verify_password(user.password_hash, password):
        raise Unauthenticated("email or password is wrong")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def start_session(
    session: Session, user: User, *, workspace_slug: str | None, ttl: timedelta, ip: str | None,
    user_agent: str | None,
) -> tuple[StaffSession, Membership, str]:
    memberships = repo.memberships_of(session, user.id)
    if workspace_slug is not None:
        workspace = repo.get_workspace_by_slug(session, workspace_slug)
        memberships = [m for m in memberships if workspace is not None and m.workspace_id == workspace.id]
    if not memberships:
        raise Unauthenticated("this account has no access to that workspace")
    membership = memberships[0]
    token = new_token(nbytes=SESSION_TOKEN_BYTES)
    now = utcnow()
    staff_session = StaffSession(
        workspace_id=membership.workspace_id,
        user_id=user.id,
        token_hash=token_digest(token),
        csrf_token=new_token(nbytes=24),
        expires_at=now + ttl,
        last_seen_at=now,
        ip=ip,
        user_agent=(user_agent or "")[:300],
    )
    session.add(staff_session)
    user.last_login_at = now
    session.flush()
    audit(session, workspace_id=membership.workspace_id, actor=f"user:{user.id}", action="session.started",
          subject_type="user", subject_id=user.id, data={"ip": ip})
    return staff_session, membership, token


def end_session(session: Session, staff_session: StaffSession) -> None:
    staff_session.revoked_at = utcnow()


def create_api_key(
    session: Session, workspace_id: int, *, name: str, scopes: list[str] | None,
    expires_at: object = None, actor: str, actor_permissions: frozenset[str], created_by_user_id: int | None,
) -> tuple[ApiKey, str]:
    wanted = frozenset(scopes) if scopes is not None else frozenset(DEFAULT_API_KEY_SCOPES)
    if not can_grant(actor_permissions, wanted):
        missing = sorted(wanted - actor_permissions)
        raise Forbidden(f"you cannot grant scopes you do not hold: {', '.join(missing)}")
    secret = new_token(API_KEY_PREFIX)
    key = repo.ApiKeyRepository(session, workspace_id).new(
        name=name,
        prefix=secret[:12],
        key_hash=token_digest(secret),
        scopes=sorted(wanted),
        created_by_user_id=created_by_user_id,
        expires_at=expires_at,
    )
    audit(session, workspace_id=workspace_id, actor=actor, action="api_key.created",
          subject_type="api_key", subject_id=key.id, data={"name": name, "scopes": sorted(wanted)})
    return key, secret


def revoke_api_key(session: Session, workspace_id: int, key_id: int, *, actor: str) -> ApiKey:
    key = repo.ApiKeyRepository(session, workspace_id).get_or_404(key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit(session, workspace_id=workspace_id, actor=actor, action="api_key.revoked",
              subject_type="api_key", subject_id=key.id)
    return key
