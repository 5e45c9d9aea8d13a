"""Who is calling: API keys (Bearer), staff browser sessions (cookie + CSRF) and, later, members.

Member (customer) authentication has its place here: the portal issue adds a ``member`` principal
minted from a magic link, carrying only ``member:self`` and the customer id. Staff routes require
staff permissions, so a member token can never reach them; member routes check ``customer_id``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, Request
from sqlalchemy import event, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patronage.config import Settings
from patronage.kit import idempotency, ratelimit
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.errors import CsrfFailed, Forbidden, Unauthenticated
from patronage.kit.http.route import SAFE_METHODS, IdempotentReplay, PendingKey, after_request, request_session
from patronage.kit.security import constant_time_equals, token_digest
from patronage.workspaces import repository as repo
from patronage.workspaces.permissions import MEMBER_PERMISSIONS, permissions_for
from patronage.workspaces.service import API_KEY_PREFIX, normalise_email

SESSION_COOKIE = "patronage_session"
MEMBER_COOKIE = "patronage_member"
MEMBER_TOKEN_PREFIX = "pmt_"  # noqa: S105 - a token prefix, not a secret  # nosec B105
CSRF_HEADER = "x-csrf-token"
LAST_USED_RESOLUTION = timedelta(seconds=60)

PrincipalKind = Literal["user", "api_key", "member"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    workspace_id: int
    subject_id: int
    permissions: frozenset[str]
    session_id: int | None = None
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.subject_id}"

    @property
    def user_id(self) -> int | None:
        return self.subject_id if self.kind == "user" else None


class _ApiKeyCache:
    """Principals by key digest for a few seconds, and with each the workspace's rendered snapshot: a hot
    key costs no query, and ``GET /workspace`` neither a query nor a thread.

    How stale it may be (``api_key_cache_seconds``, default 5 s): in the process that revokes a key or
    changes a workspace, the change shows at once (``clear``/``forget_workspaces`` run after the commit);
    other processes see it within the TTL. An expiring key is never served past its expiry. A look-up
    that read the database before a ``clear`` never stores its (possibly old) answer after it: every
    clear bumps ``generation`` and ``put`` refuses answers from an older one.
    """

    def __init__(self) -> None:
        # digest -> [expiry (monotonic), principal, workspace id, rendered workspace or None]
        self._entries: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        principal: Principal = entry[1]
        return principal

    def put(self, digest: str, principal: Principal, ttl: float, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return  # read before a revocation (or a workspace change) was committed: do not keep it
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = [time.monotonic() + ttl, principal, principal.workspace_id, None]

    def workspace(self, digest: str) -> bytes | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        body: bytes | None = entry[3]
        return body

    def put_workspace(self, digest: str, workspace_id: int, body: bytes, generation: int) -> None:
        with self._lock:
            entry = self._entries.get(digest)
            if generation == self.generation and entry is not None and entry[2] == workspace_id:
                entry[3] = body

    def forget_workspaces(self) -> None:
        with self._lock:
            self.generation += 1
            for entry in self._entries.values():
                entry[3] = None

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


API_KEY_CACHE = _ApiKeyCache()


def _from_api_key(request: Request, session: Session, token: str) -> Principal:
    settings: Settings = request.app.state.settings
    digest = token_digest(token)
    cached = API_KEY_CACHE.get(digest)
    if cached is not None:
        return cached
    generation = API_KEY_CACHE.generation  # before the read: a revocation committed after it wins
    key = repo.find_api_key(session, digest)
    now = utcnow()
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise Unauthenticated("API key is unknown, revoked or expired")
    principal = Principal("api_key", key.workspace_id, key.id, frozenset(key.scopes))
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        db: Database = request.app.state.db
        key_id = key.id  # read now: after a rollback the row's attributes are expired
        after_request(request, lambda: _touch_api_key(db, key_id))
    ttl = settings.api_key_cache_seconds
    if key.expires_at is not None:  # an expiring key is never served from the cache past its expiry
        ttl = min(ttl, (key.expires_at - now).total_seconds())
    API_KEY_CACHE.put(digest, principal, ttl, generation)
    return principal


def _touch_api_key(db: Database, key_id: int) -> None:
    """Stamp ``last_used_at`` in a short transaction of its own, after the request's has ended: a
    read-only request must not turn into a writer, and on SQLite a second writer inside a writing
    request would wait for that request's own lock."""
    from patronage.workspaces.models import ApiKey

    with db.unit_of_work() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


def _from_session_cookie(
    request: Request, session: Session, token: str, *, csrf_token: str | None = None
) -> Principal:
    staff_session = repo.find_staff_session(session, token_digest(token))
    now = utcnow()
    if staff_session is None or staff_session.revoked_at is not None or staff_session.expires_at <= now:
        raise Unauthenticated("session expired; sign in again")
    membership = repo.MembershipRepository(session, staff_session.workspace_id).for_user(staff_session.user_id)
    if membership is None or not membership.user.is_active:
        raise Unauthenticated("this account no longer has access to the workspace")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "") if csrf_token is None else csrf_token
        if not sent or not constant_time_equals(sent, staff_session.csrf_token):
            raise CsrfFailed("send the session's CSRF token in the X-CSRF-Token header")
    return Principal(
        "user",
        staff_session.workspace_id,
        staff_session.user_id,
        frozenset(permissions_for(membership.role)),
        session_id=staff_session.id,
        csrf_token=staff_session.csrf_token,
    )


def _from_member_token(request: Request, session: Session, token: str, *, via_cookie: bool) -> Principal:
    from patronage.members.service import find_member_session

    member_session = find_member_session(session, token)
    if member_session is None:
        raise Unauthenticated("member session expired; request a new sign-in link")
    if via_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not constant_time_equals(sent, member_session.csrf_token):
            raise CsrfFailed("send the session's CSRF token in the X-CSRF-Token header")
    return Principal(
        "member",
        member_session.workspace_id,
        member_session.customer_id,
        MEMBER_PERMISSIONS,
        session_id=member_session.id,
        csrf_token=member_session.csrf_token,
    )


async def authenticate(request: Request, session: Annotated[Session, Depends(request_session)]) -> Principal:
    """Dependency: who is calling. A recently seen API key costs neither a query nor a thread hop."""
    return await _principal(request, session)


async def _principal(request: Request, session: Session) -> Principal:
    """The caller, resolved once per request however many dependencies ask."""
    state = request.state
    known: Principal | None = getattr(state, "principal", None)
    if known is not None:
        return known
    principal = _cached_api_key(request)
    if principal is None or getattr(state, "idempotency", None) is not None:
        principal = await run_in_threadpool(resolve_principal, request, session)
    state.principal = principal
    return principal


def _api_key_digest(request: Request) -> str | None:
    state = request.state
    known: str | None = getattr(state, "api_key_digest", "")
    if known != "":  # computed earlier in this request (None: no API key)
        return known
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    digest = token_digest(token) if scheme.lower() == "bearer" and token.startswith(API_KEY_PREFIX) else None
    state.api_key_digest = digest
    return digest


def _cached_api_key(request: Request) -> Principal | None:
    digest = _api_key_digest(request)
    return None if digest is None else API_KEY_CACHE.get(digest)


def cached_workspace(request: Request) -> bytes | None:
    """The caller's workspace as rendered for it a moment ago, when the caller is a cached API key."""
    digest = _api_key_digest(request)
    return None if digest is None else API_KEY_CACHE.workspace(digest)


def remember_workspace(request: Request, principal: Principal, body: bytes, generation: int) -> None:
    """Keep the rendered workspace with the caller's cached principal (API keys only). ``generation``:
    ``API_KEY_CACHE.generation`` read before the workspace was, so a change committed since is not hidden."""
    digest = _api_key_digest(request) if principal.kind == "api_key" else None
    if digest is not None:
        API_KEY_CACHE.put_workspace(digest, principal.workspace_id, body, generation)


def forget_workspaces(session: Session) -> None:
    """A workspace changes in ``session``'s transaction: drop the rendered snapshots now and again once
    it commits (a request reading in between must not keep the old one)."""
    API_KEY_CACHE.forget_workspaces()
    event.listen(session, "after_commit", lambda _session: API_KEY_CACHE.forget_workspaces(), once=True)


def session_principal(request: Request, session: Session, *, csrf_token: str | None = None) -> Principal | None:
    """The staff member signed in with the session cookie, if any (browser routes).

    Unsafe methods need the session's CSRF token: ``csrf_token`` (a form field) or the X-CSRF-Token header.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return _from_session_cookie(request, session, cookie, csrf_token=csrf_token)


def resolve_principal(request: Request, session: Session) -> Principal:
    """Who is calling, from the Authorization header or a session cookie (blocking: database look-ups)."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("use 'Authorization: Bearer <API key>'")
        if token.startswith(MEMBER_TOKEN_PREFIX):
            principal = _from_member_token(request, session, token, via_cookie=False)
        elif token.startswith(API_KEY_PREFIX):
            principal = _from_api_key(request, session, token)
        else:
            raise Unauthenticated("API key is unknown, revoked or expired")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        principal = _from_session_cookie(request, session, cookie)
    elif member_cookie := request.cookies.get(MEMBER_COOKIE):
        principal = _from_member_token(request, session, member_cookie, via_cookie=True)
    else:
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>' or sign in")
    _bind_idempotency(request, session, principal)
    return principal


def _bind_idempotency(request: Request, session: Session, principal: Principal) -> None:
    pending: PendingKey | None = getattr(request.state, "idempotency", None)
    if pending is None:
        return
    pending.workspace_id = principal.workspace_id
    record = idempotency.find(session, principal.workspace_id, pending.key, pending.fingerprint)
    if record is not None:
        raise IdempotentReplay(record)


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller holds ``permission``. The route table exposes it for the auth matrix."""

    # Takes the request alone rather than depending on ``authenticate``: FastAPI's dependency solving
    # costs about as much per level as serving a cached key, on every request.
    async def dependency(request: Request) -> Principal:
        principal = await _principal(request, request.state.session)
        if permission not in principal.permissions:
            raise Forbidden(f"this action needs the {permission!r} permission")
        return principal

    dependency.required_permission = permission  # type: ignore[attr-defined]
    return dependency


def limit_login(request: Request, email: str) -> None:
    """Per account and per client address, so neither one password nor one host can be hammered."""
    db = request.app.state.db
    ip = request.client.host if request.client else "unknown"
    ratelimit.hit(db, ratelimit.LOGIN, f"email:{normalise_email(email)}")
    ratelimit.hit(db, ratelimit.LOGIN_BY_IP, f"ip:{ip}")


async def require_member(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Dependency for member routes: a signed-in customer, acting only on their own profile."""
    if principal.kind != "member":
        raise Forbidden("this route is for signed-in members")
    return principal


require_member.required_permission = "member:self"  # type: ignore[attr-defined]
