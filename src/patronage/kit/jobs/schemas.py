"""Job queue views for operators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from patronage.kit.schemas import Output


class JobOut(Output):
    id: int
    task: str
    status: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    run_at: datetime
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
