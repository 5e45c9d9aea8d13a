"""A SQLite file the application creates gets 8 KiB pages; one that already exists keeps its own (kit/db.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from patronage.config import Settings
from patronage.kit.db import SQLITE_PAGE_SIZE, make_database


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_database_file_gets_the_larger_pages(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = make_database(Settings(database_url=f"sqlite:///{path}", env="test"))
    try:
        with db.unit_of_work() as session:
            session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            session.execute(text("INSERT INTO t (v) VALUES ('x')"))
    finally:
        db.dispose()
    assert SQLITE_PAGE_SIZE == 8192
    assert _page_size(path) == SQLITE_PAGE_SIZE


def test_an_existing_database_keeps_its_page_size_and_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO t (v) VALUES ('kept')")
    conn.close()
    db = make_database(Settings(database_url=f"sqlite:///{path}", env="test"))
    try:
        with db.unit_of_work() as session:
            session.execute(text("INSERT INTO t (v) VALUES ('added')"))
        with db.unit_of_work(read_only=True) as session:
            assert session.execute(text("SELECT v FROM t ORDER BY id")).scalars().all() == ["kept", "added"]
            assert session.execute(text("PRAGMA page_size")).scalar() == 4096
    finally:
        db.dispose()
    assert _page_size(path) == 4096
