"""Idempotency keys for write APIs: same key + same request -> the stored response; other request -> 409.

The record is inserted in the same transaction as the write it protects, so the effect and the record
commit together. Concurrent requests with one key race on a unique index: one commits, the others roll
back and replay the winner's response.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ForeignKey, Index, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, field_error
from patronage.kit.models import Base, IdMixin
from patronage.kit.types import BigId, UTCDateTime

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# ``Field(json_schema_extra=SHOWN_ONCE)`` marks a response field holding a secret the server keeps only as a
# digest (an API key, a signing secret, a confirmation token): the stored response has it as null, so 24 h of
# replayable responses never become a second copy of the secrets (docs/api.md#idempotency-keys).
SHOWN_ONCE_MARK = "x-shown-once"
SHOWN_ONCE: dict[str, Any] = {SHOWN_ONCE_MARK: True}


class IdempotencyRecord(IdMixin, Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("uq_idempotency_keys_ws_key", "workspace_id", "key", unique=True),)

    workspace_id: Mapped[int] = mapped_column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    media_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class KeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def shown_once_fields(model: Any) -> frozenset[str]:
    """The names (as serialised) of ``model``'s top-level fields marked ``SHOWN_ONCE``."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return frozenset()
    return frozenset(
        field.serialization_alias or field.alias or name
        for name, field in model.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get(SHOWN_ONCE_MARK)
    )


def redact(body: str, fields: frozenset[str]) -> str:
    """``body`` as it may be stored: the shown-once fields of a JSON object set to null."""
    if not fields:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body  # not JSON: nothing of a response model in it
    if not isinstance(data, dict) or not fields & data.keys():
        return body
    data.update(dict.fromkeys(fields & data.keys()))
    # As Starlette's JSONResponse renders, so a replay differs from the first answer only in the secrets.
    return json.dumps(data, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise field_error("Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} printable characters")
    return key


def find(session: Session, workspace_id: int, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The stored response for this key, if any; 409 if the key was used for another request."""
    record = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.workspace_id == workspace_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > utcnow() - IDEMPOTENCY_WINDOW,
        )
    ).one_or_none()
    if record is not None and record.request_hash != fingerprint:
        raise KeyReused(f"Idempotency-Key {key!r} was first used with another method, path or body")
    return record


def remember(
    session: Session,
    workspace_id: int,
    key: str,
    fingerprint: str,
    *,
    status_code: int,
    media_type: str,
    body: str,
) -> None:
    # An expired record with the same key would collide with the unique index: clear it first.
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.workspace_id == workspace_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at <= utcnow() - IDEMPOTENCY_WINDOW,
        )
    )
    session.add(
        IdempotencyRecord(
            workspace_id=workspace_id,
            key=key,
            request_hash=fingerprint,
            status_code=status_code,
            media_type=media_type,
            body=body,
        )
    )
    session.flush()


def prune(session: Session) -> None:
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= utcnow() - IDEMPOTENCY_WINDOW))
