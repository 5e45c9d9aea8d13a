"""Shared fixtures: every database test runs on SQLite and, when a server is reachable, on PostgreSQL.

PostgreSQL is used when ``PATRONAGE_TEST_POSTGRES_URL`` is set (then it is mandatory) or when a server
answers on 127.0.0.1:5432. Each test gets a fresh database: a copy of a migrated SQLite file, or
PostgreSQL tables truncated before the test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from patronage import domains
from patronage.app import create_app
from patronage.config import Settings
from patronage.kit import clock
from patronage.kit.db import Database, make_database
from patronage.kit.models import Base
from patronage.workspaces import service
from patronage.workspaces.permissions import ALL, Role
from patronage.workspaces.schemas import WorkspaceCreate
from tests.web.chromium import SKIP_LINE as BROWSER_SKIP_LINE
from tests.web.chromium import skipped_for_want_of_chromium

domains.load_tasks()

PG_ENV = "PATRONAGE_TEST_POSTGRES_URL"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_admin_url() -> str | None:
    explicit = os.environ.get(PG_ENV)
    url = explicit or DEFAULT_PG
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        if explicit:
            raise RuntimeError(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}") from exc
        return None
    return url


POSTGRES_ADMIN_URL = _postgres_admin_url()


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_ADMIN_URL:
        return f"PostgreSQL suite: ON ({make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)})"
    return "PostgreSQL suite: SKIPPED - no server reachable (set PATRONAGE_TEST_POSTGRES_URL to require it)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Here, not in tests/web/conftest.py: under pytest-xdist only the controller writes the summary, and it
    # never loads that conftest; the skip reports the workers send back still say why they skipped.
    if skipped_for_want_of_chromium(terminalreporter.stats.get("skipped", [])):
        terminalreporter.write_line(BROWSER_SKIP_LINE, yellow=True)
    if not POSTGRES_ADMIN_URL:
        terminalreporter.write_line(
            "PostgreSQL suite skipped: no server on 127.0.0.1:5432 and PATRONAGE_TEST_POSTGRES_URL unset",
            yellow=True,
        )


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    settings = Settings(database_url=f"sqlite:///{path}", env="test")
    db = make_database(settings)
    Base.metadata.create_all(db.engine)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not POSTGRES_ADMIN_URL:
        pytest.skip("PostgreSQL not reachable")
    name = f"patronage_test_{_worker_suffix()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_RESTART_SEQUENCES = """
DO $$
DECLARE s record;
BEGIN
  FOR s IN SELECT c.oid::regclass AS seq FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'S' AND n.nspname = current_schema() LOOP
    PERFORM setval(s.seq, 1, false);
  END LOOP;
END $$;
"""


def empty_postgres(db: Database) -> None:
    """Empty what the previous test wrote and restart ids at 1, like a fresh SQLite copy.

    One round trip finds the tables holding rows (usually a handful); DELETE on small tables costs far
    less than TRUNCATE, which swaps every table's files.
    """
    tables = Base.metadata.sorted_tables
    probe = " UNION ALL ".join(f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables)
    with db.engine.begin() as conn:
        dirty = {row[0] for row in conn.execute(text(probe))}
        for table in reversed(tables):  # children before parents
            if table.name in dirty:
                conn.execute(table.delete())
        conn.execute(text(_RESTART_SEQUENCES))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "patronage.db"
        shutil.copy(template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
    return Settings(
        database_url=url,
        env="test",
        secret_key="test-secret-key-0123456789",
        base_url="https://testserver",
        log_level="WARNING",
        log_json=False,
    )


@pytest.fixture
def db(settings: Settings, backend: str) -> Iterator[Database]:
    database = make_database(settings)
    if backend == "postgres":
        empty_postgres(database)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _unfrozen_clock() -> Iterator[None]:
    yield
    clock.unfreeze()


@pytest.fixture(autouse=True)
def _reset_rate_limits() -> Iterator[None]:
    from patronage.kit.ratelimit import reset_local

    reset_local()
    yield
    reset_local()


@pytest.fixture(autouse=True)
def _clear_api_key_cache() -> Iterator[None]:
    from patronage.workspaces.auth import API_KEY_CACHE

    API_KEY_CACHE.clear()
    yield
    API_KEY_CACHE.clear()


@pytest.fixture(autouse=True)
def _clear_webhook_subscriptions() -> Iterator[None]:
    # Keyed by database URL and workspace id, which the next test on this worker reuses: an endpoint of
    # the previous test would otherwise still be "subscribed" for up to CACHE_SECONDS.
    from patronage.webhooks.subscriptions import CACHE

    CACHE.clear()
    yield
    CACHE.clear()


@pytest.fixture
def app(settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, db=db)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


@dataclass
class Tenant:
    """A workspace with an owner and an all-scopes API key, ready for requests."""

    workspace_id: int
    slug: str
    owner_id: int
    owner_email: str
    owner_password: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_tenant(db: Database, slug: str = "acme", *, timezone: str = "UTC") -> Tenant:
    password = "correct horse battery"
    with db.unit_of_work() as session:
        ws = service.create_workspace(
            session, WorkspaceCreate(name=slug.title(), slug=slug, timezone=timezone, currency="EUR")
        )
        user = service.create_user(session, email=f"owner@{slug}.test", password=password, name="Owner")
        service.add_member(session, ws.id, user, Role.OWNER, actor="test")
        _, secret = service.create_api_key(
            session, ws.id, name="test", scopes=[p.value for p in ALL], actor="test",
            actor_permissions=frozenset(p.value for p in ALL), created_by_user_id=user.id,
        )
        return Tenant(ws.id, slug, user.id, user.email, password, secret)


@pytest.fixture
def tenant(db: Database) -> Tenant:
    return make_tenant(db, "acme")


@pytest.fixture
def other_tenant(db: Database) -> Tenant:
    return make_tenant(db, "globex")
