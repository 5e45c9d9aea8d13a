"""Pure-ASGI middleware (no BaseHTTPMiddleware: it costs throughput and breaks streaming)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time

import structlog
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patronage.kit.errors import PROBLEM_JSON, PayloadTooLarge

log = logging.getLogger("patronage.access")

REQUESTS = Counter(
    "patronage_http_requests_total", "HTTP requests by route template and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "patronage_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


REQUEST_ID_SCOPE_KEY = "patronage.request_id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class _RequestIds:
    """Unique request ids without a system call each (uuid4 reads the OS's random source every time):
    a random per-process prefix and a counter. Ids need to be unique, not secret."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)  # a forked worker must not repeat its parent's ids

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_IDS = _RequestIds()


class _TooLarge(HTTPException):
    """Raised from ``receive``. An HTTPException, so FastAPI's body parsing lets it through as is."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


class BodySizeLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed in chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = announced = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    await self._reject(scope, send)
                    return
                announced = True
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and (announced or scope.get("http_version") in ("1.0", "1.1")):
            # HTTP/1 framing: the server reads exactly Content-Length bytes, and none without it or a
            # chunked transfer (RFC 9112, 6.3). Within the limit already: nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # Whatever the app made of the interrupted body (a 400 from a parser that caught the
                # error, say), the client gets the 413 it deserves.
                if not started:
                    started = True
                    await self._reject(scope, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        error = PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes")
        body = json.dumps(error.to_problem(instance=scope.get("path"))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestContext:
    """Request id, access log and Prometheus metrics labelled by route template (bounded cardinality)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        sent_id = _header(scope, b"x-request-id")
        request_id = sent_id if sent_id and _REQUEST_ID.fullmatch(sent_id) else _IDS.next()
        scope[REQUEST_ID_SCOPE_KEY] = request_id  # the 500 handler, outside this middleware, echoes it too
        structlog.contextvars.bind_contextvars(request_id=request_id)  # every log line of this request
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            template = route_template(scope)
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(elapsed)
            if template not in ("/healthz", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


def route_template(scope: Scope) -> str:
    """The matched route's full path template (``/api/v1/staff/{user_id}``), or ``unmatched``.

    A route inside an included router knows only its own part of the template; the router prefixes
    are the leading segments of the requested path that the route's template does not cover.
    """
    route = scope.get("route")
    path: str | None = getattr(route, "path", None)
    if not path:
        if route is None and scope.get("endpoint") is not None and scope.get("root_path"):
            return f"{scope['root_path']}/{{path}}"  # a mounted app (static files)
        return "unmatched"
    if ":path}" in path:  # a parameter spanning segments: the prefix cannot be told apart
        return path
    segments = scope["path"].split("/")
    prefix = "/".join(segments[: len(segments) - path.count("/")])
    return prefix + path if prefix else path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")[:100]
            return decoded
    return None
