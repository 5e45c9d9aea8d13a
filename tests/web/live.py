"""A real server for the browser tests: uvicorn in a thread on an ephemeral port, with the job worker,
and a real SMTP server (aiosmtpd) that keeps the messages it receives."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TypeVar

import uvicorn
from aiosmtpd.controller import Controller

from patronage.app import create_app
from patronage.config import Settings, get_settings
from patronage.kit.db import Database

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, timeout: float = 20.0) -> EmailMessage:
        return eventually(lambda: next((m for m in self.messages if m["To"] == to), None), timeout=timeout)


def eventually(probe: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something (for work the job worker does in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class Live:
    url: str
    settings: Settings
    db: Database
    inbox: Inbox


@contextmanager
def live_server(database_url: str, db_factory: Callable[[Settings], Database]) -> Iterator[Live]:
    """Serve the whole application (API, console, portal, worker) on 127.0.0.1:<free port>."""
    port, smtp_port = free_port(), free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    base_url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("PATRONAGE_SMTP_PORT", "PATRONAGE_SMTP_HOST", "PATRONAGE_BASE_URL",
                                             "PATRONAGE_MAIL_BACKEND")}
    # The mail job reads the process settings (get_settings): point them at the test SMTP server.
    os.environ.update(PATRONAGE_SMTP_PORT=str(smtp_port), PATRONAGE_SMTP_HOST="127.0.0.1",
                      PATRONAGE_BASE_URL=base_url, PATRONAGE_MAIL_BACKEND="smtp")
    get_settings.cache_clear()
    settings = Settings(database_url=database_url, env="test", secret_key="browser-test-secret-0123456789",
                        base_url=base_url, cookie_secure=False, worker_poll_interval=0.05, log_level="WARNING",
                        log_json=False)
    db = db_factory(settings)
    app = create_app(settings, db=db, run_worker=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="live-server", daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, timeout=30)
        yield Live(base_url, settings, db, inbox)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        controller.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
