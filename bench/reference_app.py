"""The references for bench_api, served by exactly the same uvicorn settings as the real app.

``GET /ping`` — the issue's reference: a bare FastAPI route returning a small JSON dict. No middleware,
no authentication, no database. Patronage's throughput is compared with this one.

``GET /orm-read`` — for the diagnosis only: a bare FastAPI route doing what the real call cannot avoid,
one SQLAlchemy ORM read of the workspace row from the same SQLite file, in a worker thread (a plain
``def`` route). The gap between Patronage and this route is the cost of authentication, tenancy, the
unit of work, problem handling, request ids and metrics; the rest is the price of reading a row.
Set ``BENCH_SQLITE_URL`` to enable it.
"""

from __future__ import annotations

import os
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

app = FastAPI()

_BODY = {
    "id": 1,
    "name": "Demo Shop",
    "slug": "demo",
    "timezone": "Europe/Lisbon",
    "currency": "USD",
    "locale": "en",
    "created_at": "2026-01-01T00:00:00Z",
}


@app.get("/ping")
async def ping() -> dict[str, object]:
    return _BODY


class _Base(DeclarativeBase):
    pass


class _Workspace(_Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(60))
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    locale: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


_URL = os.environ.get("BENCH_SQLITE_URL")
_sessions: sessionmaker[Session] | None = None
if _URL:
    _engine = create_engine(_URL, connect_args={"check_same_thread": False}, pool_size=10, max_overflow=20)
    _sessions = sessionmaker(_engine, expire_on_commit=False)


@app.get("/orm-read")
def orm_read() -> dict[str, object]:
    assert _sessions is not None, "set BENCH_SQLITE_URL"
    with _sessions() as session:
        row = session.get(_Workspace, 1)
        assert row is not None
        return {
            "id": row.id, "name": row.name, "slug": row.slug, "timezone": row.timezone,
            "currency": row.currency, "locale": row.locale, "created_at": row.created_at.isoformat(),
        }
