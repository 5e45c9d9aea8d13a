"""A step of ``patronage demo``: the first analytics refresh, so the dashboard opens on real KPIs,
cohorts, RFM and CLV for the CDNOW customers (afterwards the nightly job keeps them current)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from patronage.analytics.service import run_refresh
from patronage.kit.db import Database


def refresh(db: Database, workspace_id: int, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    with console.status("analytics: KPIs, cohorts, RFM and CLV"):
        refresh_id = run_refresh(db, workspace_id, full=True)
    console.print(f"analytics: refresh {refresh_id} done in {time.perf_counter() - started:.1f} s")
    return {"refresh_id": refresh_id}
