"""``patronage analytics``: refresh the analytics store and precomputed results."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

cli = typer.Typer(help="Analytics: refresh KPIs, cohorts, RFM and CLV scores.", no_args_is_help=True)
console = Console(stderr=True)


@cli.command()
def refresh(
    workspace: Annotated[str | None, typer.Option(help="workspace slug; default: every workspace")] = None,
    full: Annotated[bool, typer.Option(help="rebuild the analytics store from scratch")] = False,
) -> None:
    """Extract, compute and store analytics now (in this process)."""
    from sqlalchemy import select

    from patronage import domains
    from patronage.analytics.service import run_refresh
    from patronage.cli import _database
    from patronage.workspaces.models import Workspace

    db = _database()
    domains.load_models()
    with db.unit_of_work(read_only=True) as session:
        stmt = select(Workspace.id, Workspace.slug).order_by(Workspace.id)
        if workspace is not None:
            stmt = stmt.where(Workspace.slug == workspace)
        targets = list(session.execute(stmt))
    if not targets:
        raise typer.BadParameter(f"no workspace {workspace!r}" if workspace else "no workspaces")
    with console.status("refreshing analytics") as status:
        for workspace_id, slug in targets:
            status.update(f"refreshing analytics for {slug}")
            refresh_id = run_refresh(db, workspace_id, full=full)
            console.print(f"{slug}: refresh {refresh_id} done")
