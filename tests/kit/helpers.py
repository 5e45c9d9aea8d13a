"""Helpers for the foundation's tests: a real server on an ephemeral port, sign-in, row counts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patronage.kit.db import Database
from patronage.workspaces import service
from patronage.workspaces.permissions import Role

PASSWORD = "correct horse battery staple"


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def login(client: TestClient, email: str, password: str, workspace: str | None = None) -> str:
    """Sign in through the API; the client keeps the cookie. Returns the session's CSRF token."""
    body: dict[str, Any] = {"email": email, "password": password}
    if workspace is not None:
        body["workspace"] = workspace
    response = client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


def add_user(db: Database, workspace_id: int, email: str, role: Role) -> int:
    """A staff member with ``role`` (password ``PASSWORD``); returns the user id."""
    with db.unit_of_work() as session:
        user = service.create_user(session, email=email, password=PASSWORD, name=email.split("@", maxsplit=1)[0])
        service.add_member(session, workspace_id, user, role, actor="test")
        return user.id


def count(db: Database, model: Any, *where: Any) -> int:
    with db.unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
