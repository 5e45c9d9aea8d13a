"""One HTTP attempt of a delivery. No database here: the task calls it between two transactions."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from patronage import __version__
from patronage.kit.clock import utcnow
from patronage.webhooks import signing

RESPONSE_BODY_LIMIT = 2048  # bytes of the receiver's answer kept in the log; the rest is never read


@dataclass(frozen=True)
class OutgoingRequest:
    url: str
    secrets: tuple[str, ...]  # the current secret, then a rotated-out one still in its grace period
    event_uid: str
    event_type: str
    delivery_id: int
    body: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def summary(self) -> str:
        if self.status_code is not None:
            return f"receiver answered HTTP {self.status_code}"
        return self.error or "no response"


def headers(request: OutgoingRequest, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"Patronage-Webhooks/{__version__}",
        "Patronage-Event-Id": request.event_uid,
        "Patronage-Event-Type": request.event_type,
        "Patronage-Delivery-Id": str(request.delivery_id),
        "Patronage-Timestamp": str(timestamp),
        "Patronage-Signature": signing.header(request.secrets, timestamp, request.body),
    }


def send(request: OutgoingRequest, *, timeout: float) -> Outcome:
    """POST the body, signed now. Never raises for the receiver's faults: they become the outcome."""
    timestamp = int(utcnow().timestamp())
    started = time.monotonic()
    status: int | None = None
    kept = b""
    error: str | None = None
    try:
        # No redirects: a 3xx is a misconfigured URL to fix, not a reason to post the body elsewhere.
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", request.url, content=request.body.encode(), headers=headers(request, timestamp))
            as response,
        ):
            status = response.status_code
            for chunk in response.iter_bytes():
                kept += chunk
                if len(kept) >= RESPONSE_BODY_LIMIT:
                    break
    except httpx.TimeoutException:
        error = f"timed out after {timeout:g}s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    duration_ms = int((time.monotonic() - started) * 1000)
    body = kept[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace") if status is not None else None
    return Outcome(status, duration_ms, error, body)
