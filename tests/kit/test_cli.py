"""The ``patronage`` command line against a fresh, migrated SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from patronage import cli
from patronage.config import Settings, get_settings
from patronage.kit.db import Database, make_database
from patronage.kit.security import token_digest, verify_password
from patronage.workspaces.models import ApiKey, Membership, User, Workspace
from tests.kit.helpers import count


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """PATRONAGE_DATABASE_URL at a temporary file, migrated by ``patronage migrate``."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("PATRONAGE_DATABASE_URL", url)
    monkeypatch.setenv("PATRONAGE_LOG_LEVEL", "WARNING")
    # The CLI configures logging for a process; in the test process, leave pytest's handlers alone.
    monkeypatch.setattr("patronage.kit.logging.configure_logging", lambda *args, **kwargs: None)
    get_settings.cache_clear()
    result = run("migrate")
    assert "migrated to head" in result.output
    db = make_database(Settings(database_url=url))
    yield db
    db.dispose()
    get_settings.cache_clear()


def run(*args: str, exit_code: int = 0):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


def test_create_workspace_user_and_api_key(cli_db: Database) -> None:
    out = run("create-workspace", "Corner Shop", "corner", "--timezone", "Europe/Lisbon", "--currency", "EUR").output
    assert "workspace corner created" in out
    run("create-user", "corner", "ana@corner.example", "--role", "admin", "--name", "Ana",
        "--password", "a long password")
    key = run("create-api-key", "corner", "till", "--scope", "workspace:read", "--scope", "events:write")
    secret = key.stdout.strip().splitlines()[-1]
    assert secret.startswith("pat_")

    with cli_db.unit_of_work(read_only=True) as session:
        workspace = session.scalars(select(Workspace).where(Workspace.slug == "corner")).one()
        assert (workspace.name, workspace.timezone, workspace.currency) == ("Corner Shop", "Europe/Lisbon", "EUR")
        user = session.scalars(select(User).where(User.email == "ana@corner.example")).one()
        assert verify_password(user.password_hash, "a long password")
        membership = session.scalars(select(Membership).where(Membership.user_id == user.id)).one()
        assert (membership.workspace_id, membership.role) == (workspace.id, "admin")
        api_key = session.scalars(select(ApiKey).where(ApiKey.workspace_id == workspace.id)).one()
        assert api_key.key_hash == token_digest(secret)
        assert api_key.scopes == ["events:write", "workspace:read"]


def test_cli_refuses_bad_input(cli_db: Database) -> None:
    run("create-workspace", "Bad", "Not A Slug", exit_code=2)
    run("create-workspace", "Shop", "shop")
    run("create-workspace", "Shop again", "shop", exit_code=1)  # the slug is taken
    run("create-user", "nowhere", "a@b.example", "--password", "a long password", exit_code=2)
    run("create-user", "shop", "a@b.example", "--password", "short", exit_code=1)
    run("create-api-key", "nowhere", "k", exit_code=2)
    assert count(cli_db, Workspace) == 1
    assert count(cli_db, User) == 0


def test_doctor_passes_on_a_fresh_database(cli_db: Database) -> None:
    result = run("doctor")
    assert "error" not in result.output.lower().replace("errors", "")


def record_loader(db: Database, workspace_id: int, console: object) -> None:
    LOADER_CALLS.append(workspace_id)


LOADER_CALLS: list[int] = []


def test_demo_is_idempotent(cli_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # The domains' demo data loaders (a real purchase log among them) are their owners' to test; here
    # a recording loader shows each run hands every loader the same, single demo workspace.
    monkeypatch.setattr("patronage.domains.DEMO_LOADERS", [f"{__name__}.record_loader"])
    LOADER_CALLS.clear()
    first = run("demo")
    second = run("demo")
    assert "Demo ready" in first.output and "Demo ready" in second.output
    assert count(cli_db, Workspace, Workspace.slug == cli.DEMO_SLUG) == 1
    assert count(cli_db, User, User.email == cli.DEMO_EMAIL) == 1
    assert count(cli_db, Membership) == 1
    assert len(LOADER_CALLS) == 2 and len(set(LOADER_CALLS)) == 1
    with cli_db.unit_of_work(read_only=True) as session:
        user = session.scalars(select(User).where(User.email == cli.DEMO_EMAIL)).one()
        assert verify_password(user.password_hash, cli.DEMO_PASSWORD)


def test_migrate_twice_is_harmless(cli_db: Database) -> None:
    run("migrate")
