"""Two writers racing into the same unique keys (PostgreSQL concurrency tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from patronage.kit.db import Database


def race(db: Database, first: Callable[[Session], Any], second: Callable[[Session], Any]) -> list[Any]:
    """``first`` writes and holds its transaction open while ``second`` runs into the same unique keys."""
    outcomes: list[Any] = [None, None]
    wrote = threading.Event()

    def run_first() -> None:
        with db.unit_of_work() as session:
            outcomes[0] = first(session)
            wrote.set()
            time.sleep(0.4)  # the second writer now waits on the unique indexes, then loses

    def run_second() -> None:
        wrote.wait(10)
        with db.unit_of_work() as session:
            outcomes[1] = second(session)

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes
