"""Where the browser tests find Chromium, and the one line that says they did not run.

Kept free of application imports: the root conftest reads it to print that line from the process that
writes the terminal summary (with pytest-xdist, the controller, which never imports tests/web/conftest.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REQUIRE_ENV = "PATRONAGE_REQUIRE_BROWSER"
PATH_ENV = "PATRONAGE_CHROMIUM_PATH"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
SKIP_LINE = (f"Browser tests skipped: no Chromium found (apt-get install chromium, or set {REQUIRE_ENV}=1 to make "
             "a missing browser an error)")


def find_chromium() -> str | None:
    """``PATRONAGE_CHROMIUM_PATH`` when set (a path that does not exist means "no browser"), else the usual places."""
    explicit = os.environ.get(PATH_ENV)
    if explicit is not None:
        return explicit if Path(explicit).exists() else None
    for path in CHROMIUM_CANDIDATES:
        if Path(path).exists():
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false")


def skipped_for_want_of_chromium(skipped_reports: list[object]) -> bool:
    """Whether any of these skip reports (local or sent by an xdist worker) is a browser test's."""
    return any(SKIP_LINE in str(getattr(report, "longrepr", "")) for report in skipped_reports)
