"""``patronage import customers|orders|returns|events FILE --workspace SLUG``: bulk import from CSV/JSONL.

Streams the file (bounded memory), shows a progress bar over its bytes, commits chunk by chunk, writes
failed rows to ``--errors`` and is safe to run again: nothing already imported changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

cli = typer.Typer(help="Bulk import customers, orders, returns or events from CSV or JSON Lines.", no_args_is_help=True)
console = Console(stderr=True)

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSONL file")]
WorkspaceOpt = Annotated[str, typer.Option("--workspace", "-w", help="workspace slug")]
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="csv or jsonl (default: from the extension)")]
ErrorsOpt = Annotated[Path | None, typer.Option("--errors", help="write failed rows here (CSV: line, reason)")]
ChunkOpt = Annotated[int | None, typer.Option("--chunk-size", min=1, max=20_000, help="items per transaction")]


EarnOpt = Annotated[bool, typer.Option(
    "--earn/--no-earn", help="whether the imported orders earn points under the live earning rules")]


def _run(
    kind: str, file: Path, *, workspace: str, fmt: str | None, errors: Path | None, chunk: int | None,
    earn: bool = True,
) -> None:
    from patronage import domains
    from patronage.config import get_settings
    from patronage.events.importer.readers import detect_format
    from patronage.events.importer.runner import ImportReport, run_import
    from patronage.kit.db import make_database
    from patronage.kit.logging import configure_logging
    from patronage.workspaces.repository import get_workspace_by_slug

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    domains.load_tasks()
    try:
        file_format = detect_format(file, fmt)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    db = make_database(settings)
    try:
        with db.unit_of_work(read_only=True) as session:
            ws = get_workspace_by_slug(session, workspace)
            if ws is None:
                raise typer.BadParameter(f"no workspace {workspace!r}")
            workspace_id = ws.id
        columns = (
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[counts]}"),
        )
        # Refreshed by the import's callbacks rather than by Rich's own thread: a process without other
        # threads may fork the import's reader process (see importer/stream.py).
        with Progress(*columns, console=console, transient=False, auto_refresh=False) as progress:
            task = progress.add_task(f"import {kind}", total=file.stat().st_size, counts="")

            def advance(n: int) -> None:
                progress.advance(task, n)
                progress.refresh()

            def on_chunk(r: ImportReport) -> None:
                progress.update(task, counts=f"{r.created} new, {r.updated} updated, {r.unchanged} same, "
                                             f"{r.failed} failed", refresh=True)

            report = run_import(
                db, workspace_id, kind, file, file_format,  # type: ignore[arg-type]
                errors_path=errors, chunk_size=chunk, progress=advance, on_chunk=on_chunk, actor="cli",
                earn=earn,
            )
            progress.update(task, completed=file.stat().st_size, refresh=True)
    finally:
        db.dispose()
    rate = report.read / report.seconds if report.seconds else 0.0
    console.print(
        f"{kind}: {report.read} read, {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.failed} failed in {report.seconds:.1f}s ({rate:,.0f}/s)"
    )
    if report.failed:
        where = f"; see {errors}" if errors else "; pass --errors FILE to see them"
        console.print(f"[yellow]{report.failed} rows failed{where}[/yellow]")
        raise typer.Exit(1)


@cli.command()
def customers(file: FileArg, workspace: WorkspaceOpt, format: FormatOpt = None,
              errors: ErrorsOpt = None, chunk_size: ChunkOpt = None) -> None:
    """Customer profiles (upsert by external_id, else email, else phone)."""
    _run("customers", file, workspace=workspace, fmt=format, errors=errors, chunk=chunk_size)


@cli.command()
def orders(file: FileArg, workspace: WorkspaceOpt, *, format: FormatOpt = None,
           errors: ErrorsOpt = None, chunk_size: ChunkOpt = None, earn: EarnOpt = True) -> None:
    """Orders: CSV with one row per line item (order columns repeated), or JSONL with nested lines."""
    _run("orders", file, workspace=workspace, fmt=format, errors=errors, chunk=chunk_size, earn=earn)


@cli.command()
def returns(file: FileArg, workspace: WorkspaceOpt, format: FormatOpt = None,
            errors: ErrorsOpt = None, chunk_size: ChunkOpt = None) -> None:
    """Returns and refunds (held until their order is imported)."""
    _run("returns", file, workspace=workspace, fmt=format, errors=errors, chunk=chunk_size)


@cli.command()
def events(file: FileArg, workspace: WorkspaceOpt, format: FormatOpt = None,
           errors: ErrorsOpt = None, chunk_size: ChunkOpt = None) -> None:
    """Behavioural events (built-in or workspace-defined types)."""
    _run("events", file, workspace=workspace, fmt=format, errors=errors, chunk=chunk_size)
