"""A step of ``patronage demo``: the first liability snapshot, so the dashboard shows the figure at once
(afterwards the half-hourly job keeps it current)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from patronage.kit.db import Database
from patronage.liability import service


def snapshot(db: Database, workspace_id: int, console: Console) -> dict[str, Any]:
    with db.unit_of_work(read_only=True) as reader, db.unit_of_work() as writer:
        row = service.take_snapshot(reader, writer, workspace_id)
        outstanding, duration_ms = row.outstanding, row.duration_ms
    console.print(f"Points liability snapshot: {outstanding} points outstanding ({duration_ms} ms)")
    return {"outstanding": outstanding}
