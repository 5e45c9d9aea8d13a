"""Settings come from PATRONAGE_* variables; SQLite connections get the documented pragmas."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from patronage.config import Settings, get_settings
from patronage.kit.db import make_database


def test_environment_variables_with_the_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("PATRONAGE_DATABASE_URL", "sqlite:///elsewhere/p.db")
    monkeypatch.setenv("PATRONAGE_SQLITE_SYNCHRONOUS", "NORMAL")
    monkeypatch.setenv("PATRONAGE_MAX_BODY_BYTES", "1234")
    monkeypatch.setenv("PATRONAGE_COOKIE_SECURE", "false")
    monkeypatch.setenv("DATABASE_URL", "postgresql://not-ours")  # unprefixed: ignored
    settings = Settings()
    assert settings.database_url == "sqlite:///elsewhere/p.db"
    assert settings.sqlite_synchronous == "NORMAL"
    assert settings.max_body_bytes == 1234
    assert settings.cookie_secure is False
    assert settings.sqlite_path() == Path("elsewhere/p.db")


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PATRONAGE_SESSION_TTL_HOURS=3\n")
    assert Settings().session_ttl_hours == 3


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("PATRONAGE_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.database_url == "sqlite:///var/patronage.db"
    assert settings.sqlite_synchronous == "FULL"
    assert settings.sqlite_busy_timeout_ms == 30_000
    assert settings.cookie_secure is True
    assert settings.is_sqlite


@pytest.mark.parametrize(
    ("name", "value"),
    [("PATRONAGE_SQLITE_SYNCHRONOUS", "SOMETIMES"), ("PATRONAGE_SECRET_KEY", "short"), ("PATRONAGE_ENV", "staging")],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_get_settings_is_cached() -> None:
    assert get_settings() is get_settings()


def test_sqlite_paths() -> None:
    assert Settings(database_url="sqlite:////abs/p.db").sqlite_path() == Path("/abs/p.db")
    assert Settings(database_url="sqlite:///:memory:").sqlite_path() is None
    assert not Settings(database_url="postgresql+psycopg://x@h/db").is_sqlite


def test_sqlite_path_of_the_short_in_memory_url() -> None:
    assert Settings(database_url="sqlite://").sqlite_path() is None
    assert Settings(database_url="sqlite:////var/lib/p.db").sqlite_path() == Path("/var/lib/p.db")
    assert Settings(database_url="sqlite:///var/p.db").sqlite_path() == Path("var/p.db")


def _pragmas(url: str, **overrides: object) -> dict[str, object]:
    db = make_database(Settings(database_url=url, **overrides))  # type: ignore[arg-type]
    try:
        found = {}
        for engine in (db.engine, db.read_engine):
            with engine.connect() as conn:
                for pragma in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous", "temp_store"):
                    found[f"{(engine is db.engine and 'write') or 'read'}.{pragma}"] = conn.execute(
                        text(f"PRAGMA {pragma}")
                    ).scalar()
        return found
    finally:
        db.dispose()


def test_sqlite_pragmas_are_applied_on_every_connection(tmp_path: Path) -> None:
    found = _pragmas(f"sqlite:///{tmp_path / 'p.db'}")
    for side in ("write", "read"):
        assert found[f"{side}.journal_mode"] == "wal"
        assert found[f"{side}.foreign_keys"] == 1
        assert found[f"{side}.busy_timeout"] == 30_000
        assert found[f"{side}.synchronous"] == 2  # FULL: every commit is durable
        assert found[f"{side}.temp_store"] == 2  # MEMORY


def test_sqlite_settings_reach_the_pragmas(tmp_path: Path) -> None:
    found = _pragmas(f"sqlite:///{tmp_path / 'p.db'}", sqlite_synchronous="NORMAL", sqlite_busy_timeout_ms=1500)
    assert found["write.synchronous"] == 1
    assert found["write.busy_timeout"] == 1500


def test_the_database_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "p.db"
    db = make_database(Settings(database_url=f"sqlite:///{target}"))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    db.dispose()
    assert target.exists()


def test_in_memory_sqlite_works() -> None:
    db = make_database(Settings(database_url="sqlite://"))
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    db.dispose()


def test_sqlite_writers_lock_up_front_and_readers_never_wait(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a second writer waits (here: gives up after busy_timeout) at its first statement,
    instead of failing later on a lock upgrade; a reader carries on under WAL."""
    db = make_database(Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", sqlite_busy_timeout_ms=50))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    first = db.sessions()
    second = db.sessions()
    reader = db.read_sessions()
    try:
        first.execute(text("SELECT count(*) FROM t"))  # holds the write lock from here on
        with pytest.raises(OperationalError, match="locked"):
            second.execute(text("SELECT count(*) FROM t"))
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1
        first.execute(text("INSERT INTO t VALUES (2)"))
        first.commit()
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1  # its snapshot
    finally:
        for session in (first, second, reader):
            session.close()
        db.dispose()


def test_foreign_keys_are_enforced_on_sqlite(tmp_path: Path) -> None:
    db = make_database(Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}"))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))"))
    with pytest.raises(Exception, match="FOREIGN KEY"), db.engine.begin() as conn:
        conn.execute(text("INSERT INTO child (parent_id) VALUES (99)"))
    db.dispose()
