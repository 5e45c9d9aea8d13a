"""Secrets: argon2id at OWASP strength (read back from a stored hash), tokens, digests, signatures."""

from __future__ import annotations

import hashlib
import re

from argon2 import PasswordHasher
from sqlalchemy import select

from patronage.kit import security
from patronage.kit.db import Database
from patronage.workspaces import service
from patronage.workspaces.models import User
from tests.conftest import Tenant

ARGON2 = re.compile(
    r"^\$argon2id\$v=(?P<v>\d+)\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)


def _stored_hash(db: Database, user_id: int) -> str:
    with db.unit_of_work(read_only=True) as session:
        return session.scalars(select(User.password_hash).where(User.id == user_id)).one()


def test_stored_password_hash_is_argon2id_with_owasp_parameters(db: Database, tenant: Tenant) -> None:
    stored = _stored_hash(db, tenant.owner_id)
    match = ARGON2.fullmatch(stored)
    assert match, stored
    assert int(match["v"]) == 19
    assert int(match["m"]) >= 19_456  # KiB
    assert int(match["t"]) >= 2
    assert int(match["p"]) >= 1
    assert tenant.owner_password not in stored
    assert security.verify_password(stored, tenant.owner_password)
    assert not security.verify_password(stored, tenant.owner_password + "!")
    assert not security.password_needs_rehash(stored)


def test_weaker_hashes_are_upgraded_at_sign_in(db: Database, tenant: Tenant) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(tenant.owner_password)
    with db.unit_of_work() as session:
        session.get(User, tenant.owner_id).password_hash = weak  # type: ignore[union-attr]
    assert security.password_needs_rehash(weak)
    with db.unit_of_work() as session:
        service.check_password(session, tenant.owner_email, tenant.owner_password)
    upgraded = _stored_hash(db, tenant.owner_id)
    assert upgraded != weak
    assert not security.password_needs_rehash(upgraded)
    assert security.verify_password(upgraded, tenant.owner_password)


def test_garbage_hashes_never_verify() -> None:
    assert not security.verify_password("not-a-hash", "x")
    assert not security.verify_password("", "")


def test_tokens_and_digests() -> None:
    token = security.new_token("pat_")
    assert token.startswith("pat_")
    assert len(token) >= 4 + 43  # 32 random bytes, URL-safe base64
    assert security.new_token() != security.new_token()
    assert security.token_digest(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(security.token_digest(token)) == 64


def test_hmac_and_constant_time_compare() -> None:
    # RFC 4231 test case 2.
    assert (
        security.hmac_sha256_hex("Jefe", b"what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert security.hmac_sha256_hex(b"Jefe", b"x") == security.hmac_sha256_hex("Jefe", b"x")
    assert security.constant_time_equals("abc", "abc")
    assert not security.constant_time_equals("abc", "abd")
    assert not security.constant_time_equals("abc", "")
