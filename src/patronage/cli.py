"""The ``patronage`` command line."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patronage import domains
from patronage.config import get_settings

if TYPE_CHECKING:
    from patronage.kit.db import Database

app = typer.Typer(help="Patronage: customer loyalty and retention platform.", no_args_is_help=True)
console = Console(stderr=True)

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.patronage.local"
DEMO_PASSWORD = "patronage-demo"  # noqa: S105 - the documented login of the local demo workspace  # nosec B105


def _database() -> Database:
    from patronage.kit.db import make_database
    from patronage.kit.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return make_database(settings)


@app.command()
def migrate(revision: str = "head") -> None:
    """Bring the database schema up to date."""
    from patronage.kit.migrate import upgrade

    db = _database()
    upgrade(db.engine, revision)
    console.print(f"database migrated to {revision} ({db.dialect})")


@app.command("make-migration", hidden=True)
def make_migration(message: Annotated[str, typer.Option("-m")]) -> None:
    """Autogenerate a migration from the models (for developers)."""
    from patronage.kit.migrate import revision

    revision(_database().engine, message)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    worker: Annotated[bool, typer.Option(help="run the job worker in this process")] = True,
    workers: Annotated[int, typer.Option(help="HTTP worker processes (PostgreSQL only)")] = 1,
) -> None:
    """Serve the API, console and portal."""
    import uvicorn

    from patronage.app import create_app
    from patronage.kit.garbage import settle_for_serving
    from patronage.kit.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    if workers > 1:
        if settings.is_sqlite:
            raise typer.BadParameter("several HTTP processes need PostgreSQL; SQLite has one writer")
        uvicorn.run("patronage.asgi:app", host=host, port=port, workers=workers, log_config=None)
        return
    application = create_app(settings, run_worker=worker)
    settle_for_serving()
    uvicorn.run(application, host=host, port=port, log_config=None)


@app.command()
def worker(concurrency: Annotated[int, typer.Option(min=1)] = 1) -> None:
    """Process jobs. On PostgreSQL run as many as you like, on as many machines as you like."""
    import signal
    import threading

    from patronage.kit.garbage import settle_for_serving
    from patronage.kit.jobs.worker import Worker

    db = _database()
    settings = get_settings()
    domains.load_tasks()
    if db.dialect == "sqlite" and concurrency > 1:
        raise typer.BadParameter("SQLite has one writer: use --concurrency 1")
    settle_for_serving()
    pool = [Worker(db, settings) for _ in range(concurrency)]
    for w in pool:
        w.name = f"{w.name}:{pool.index(w)}"
    threads = [threading.Thread(target=w.run_forever, daemon=True) for w in pool]

    def shutdown(*_: object) -> None:
        for w in pool:
            w.stop()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(timeout=0.5)


@app.command("create-workspace")
def create_workspace(
    name: str,
    slug: str,
    timezone: str = "UTC",
    currency: str = "USD",
    locale: str = "en",
) -> None:
    """Create a workspace (tenant)."""
    from pydantic import ValidationError

    from patronage.workspaces import service
    from patronage.workspaces.schemas import WorkspaceCreate

    try:
        data = WorkspaceCreate(name=name, slug=slug, timezone=timezone, currency=currency, locale=locale)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with _database().unit_of_work() as session:
        workspace = service.create_workspace(session, data)
        typer.echo(f"workspace {workspace.slug} created (id {workspace.id})")


# The password is prompted for: its "" default is only typer's placeholder (bandit B107).
@app.command("create-user")
def create_user(  # nosec B107
    workspace: str,
    email: str,
    role: str = "owner",
    name: str = "",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Create a staff user (or add an existing one) in a workspace with a role."""
    from patronage.workspaces import repository, service
    from patronage.workspaces.permissions import Role

    with _database().unit_of_work() as session:
        ws = repository.get_workspace_by_slug(session, workspace)
        if ws is None:
            raise typer.BadParameter(f"no workspace {workspace!r}")
        user = repository.get_user_by_email(session, service.normalise_email(email))
        if user is None:
            user = service.create_user(session, email=email, password=password, name=name)
        service.add_member(session, ws.id, user, Role(role), actor="cli")
        typer.echo(f"user {user.email} is {role} of {ws.slug}")


@app.command("create-api-key")
def create_api_key(
    workspace: str,
    name: str,
    scope: Annotated[list[str] | None, typer.Option(help="permission; repeat; default: integration set")] = None,
) -> None:
    """Create an API key; the secret is printed once."""
    from patronage.workspaces import repository, service
    from patronage.workspaces.permissions import ALL

    with _database().unit_of_work() as session:
        ws = repository.get_workspace_by_slug(session, workspace)
        if ws is None:
            raise typer.BadParameter(f"no workspace {workspace!r}")
        key, secret = service.create_api_key(
            session, ws.id, name=name, scopes=scope, actor="cli",
            actor_permissions=frozenset(p.value for p in ALL), created_by_user_id=None,
        )
    console.print(f"API key {key.name} (id {key.id}), scopes: {', '.join(key.scopes)}")
    typer.echo(secret)


@app.command()
def doctor() -> None:
    """Run the integrity checks; exits 1 if any fails."""
    from patronage.kit.doctor import run_checks

    db = _database()
    domains.load_tasks()
    with db.unit_of_work(read_only=True) as session:
        findings = run_checks(session, domains.DOCTOR_CHECKS)
    table = Table("check", "result", "detail")
    for f in findings:
        colour = {"ok": "green", "warning": "yellow", "error": "red"}[f.severity]
        table.add_row(f.check, f"[{colour}]{f.severity}[/{colour}]", f.message)
    Console().print(table)
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Create the demo workspace, its owner and demo data (idempotent)."""
    from patronage.workspaces import repository, service
    from patronage.workspaces.permissions import Role
    from patronage.workspaces.schemas import WorkspaceCreate

    db = _database()
    with db.unit_of_work() as session:
        ws = repository.get_workspace_by_slug(session, DEMO_SLUG)
        if ws is None:
            ws = service.create_workspace(
                session,
                WorkspaceCreate(name="Demo Shop", slug=DEMO_SLUG, timezone="Europe/Lisbon", currency="USD"),
            )
            user = repository.get_user_by_email(session, DEMO_EMAIL) or service.create_user(
                session, email=DEMO_EMAIL, password=DEMO_PASSWORD, name="Demo Owner"
            )
            service.add_member(session, ws.id, user, Role.OWNER, actor="demo")
        workspace_id = ws.id
    for loader in domains.DEMO_LOADERS:
        module, _, func = loader.rpartition(".")
        getattr(importlib.import_module(module), func)(db, workspace_id, console)
    settings = get_settings()
    console.print(
        f"\n[bold]Demo ready.[/bold] Sign in at {settings.base_url}/login\n"
        f"  email:    {DEMO_EMAIL}\n  password: {DEMO_PASSWORD}\n"
    )


for _name, _module in domains.CLI:
    app.add_typer(importlib.import_module(_module).cli, name=_name)


def main() -> None:
    logging.captureWarnings(True)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
