"""Fixtures for the foundation's tests (tests/kit and, re-exported, tests/workspaces)."""

from __future__ import annotations

import pytest


@pytest.fixture
def sqlite_only(backend: str) -> None:
    """For tests of SQLite behaviour (pragmas, locking): skipped on the PostgreSQL run."""
    if backend != "sqlite":
        pytest.skip("SQLite behaviour")
