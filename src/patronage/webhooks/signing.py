"""Webhook signatures: ``Patronage-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.

Pure and dependency-free on purpose: receivers written in Python can copy this file as it is.
Signing the timestamp with the body lets a receiver reject replays of an old, captured request.
During a secret rotation a header carries one ``v1`` per valid secret; any one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The request is not a genuine, fresh Patronage webhook. ``str(error)`` says why."""


def compute(secret: str, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with the endpoint secret."""
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def header(secrets: Sequence[str], timestamp: int, body: bytes | str) -> str:
    """The ``Patronage-Signature`` value: the timestamp and one signature per secret."""
    parts = [f"t={timestamp}", *(f"{SCHEME}={compute(s, timestamp, body)}" for s in secrets)]
    return ",".join(parts)


def parse(value: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header; unknown schemes are ignored for forward compatibility."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(val)
            except ValueError:
                raise SignatureError("the t= timestamp is not an integer") from None
        elif key == SCHEME:
            signatures.append(val)
    if timestamp is None:
        raise SignatureError("no t= timestamp in the signature header")
    if not signatures:
        raise SignatureError(f"no {SCHEME}= signature in the signature header")
    return timestamp, signatures


def verify(
    secret: str,
    header_value: str,
    body: bytes | str,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> int:
    """Check a received webhook; returns its timestamp or raises ``SignatureError``.

    ``body`` must be the raw request body, before any JSON parsing. A timestamp further than
    ``tolerance`` seconds from ``now`` (default: this machine's clock) is rejected as a possible replay;
    de-duplicate the rest on the ``Patronage-Event-Id`` header.
    """
    timestamp, signatures = parse(header_value)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(f"timestamp {timestamp} is outside the {tolerance}s tolerance")
    expected = compute(secret, timestamp, body)
    # compare_digest on every candidate: the time taken does not reveal how much of a guess matched.
    if not any(hmac.compare_digest(expected.encode(), c.encode()) for c in signatures):
        raise SignatureError("no signature matches the secret")
    return timestamp
