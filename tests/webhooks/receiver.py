"""A real HTTP receiver on an ephemeral localhost port that checks signatures as an integrator would."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from patronage.kit import clock
from patronage.webhooks import signing


@dataclass
class Received:
    headers: dict[str, str]  # lower-cased names
    body: bytes
    verdict: str  # "ok", or why signing.verify rejected the request

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def timestamp(self) -> int:
        return int(self.headers["patronage-timestamp"])


class Receiver:
    def __init__(self, tolerance: int) -> None:
        self.tolerance = tolerance
        self.secret: str | None = None
        self.script: list[int] = []  # status codes to answer first, in order...
        self.status = 200  # ...then this one
        self.response_body = b'{"received": true}'
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/patronage"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        verdict = "no secret configured"
        if self.secret is not None:
            try:
                signing.verify(
                    self.secret, headers.get("patronage-signature", ""), body, self.tolerance,
                    now=clock.utcnow().timestamp(),  # the tests' frozen clock is "now" for both sides
                )
                verdict = "ok"
            except signing.SignatureError as exc:
                verdict = str(exc)
        with self._lock:
            self.received.append(Received(headers, body, verdict))
            status = self.script.pop(0) if self.script else self.status
        return status, self.response_body


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = receiver.handle(headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
