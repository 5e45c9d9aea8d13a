"""The durability settings docs/reliability.md promises, read back from live connections of the application's
own engines: SQLite in WAL with ``synchronous=FULL`` and writers that take the write lock at BEGIN; PostgreSQL
at its default READ COMMITTED with nothing in Patronage turning off ``fsync`` or ``synchronous_commit``."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from patronage.config import Settings
from patronage.kit.db import Database


def test_sqlite_commits_are_fsynced_and_writers_take_the_lock_up_front(
    db: Database, settings: Settings, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's settings")
    with db.unit_of_work() as session:
        pragmas = {name: session.execute(text(f"PRAGMA {name}")).scalar()
                   for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
        # 2 = FULL: the WAL is fsynced at every commit, so an answered write survives a power cut.
        assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                           "busy_timeout": settings.sqlite_busy_timeout_ms}
        # The write transaction only read, yet holds the write lock (BEGIN IMMEDIATE): no other writer can
        # start, and none can fail later upgrading a read lock (SQLITE_BUSY mid-transaction).
        path = settings.sqlite_path()
        assert path is not None
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            # ... while readers go on (WAL): a snapshot, not a wait.
            assert other.execute("SELECT count(*) FROM workspaces").fetchone() is not None
        finally:
            other.close()
        with db.unit_of_work(read_only=True) as reader:
            assert reader.execute(text("PRAGMA synchronous")).scalar() == 2


def test_postgresql_runs_read_committed_with_durable_commits(db: Database, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's settings")
    with db.unit_of_work() as session:
        assert session.execute(text("SHOW transaction_isolation")).scalar() == "read committed"
        rows = session.execute(text(
            "SELECT name, setting, source FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'full_page_writes')")).all()
    # Patronage sets none of them for its sessions (source would be 'session' or 'client'); the server
    # runs with all three on, the defaults the durability table assumes.
    assert {name: (setting, source not in ("session", "client")) for name, setting, source in rows} == {
        "fsync": ("on", True), "synchronous_commit": ("on", True), "full_page_writes": ("on", True)}
