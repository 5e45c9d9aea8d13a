"""Mount the browser faces of Patronage: static assets, the admin console and the member portal.

Every page is server-rendered (Jinja2) and enhanced with HTMX; charts use ECharts. All assets are
served from ``web/static`` (nothing from a CDN). Routes translate HTTP only: reads and writes go through
the domains' services and repositories.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent

CONSOLE = [
    "patronage.web.console.auth",
    "patronage.web.console.dashboard",
    "patronage.web.console.customers",
    "patronage.web.console.rules",
    "patronage.web.console.program",
    "patronage.web.console.segments",
    "patronage.web.console.integrations",
    "patronage.web.console.settings",
]
PORTAL = [
    "patronage.web.portal.auth",
    "patronage.web.portal.home",
    "patronage.web.portal.rewards",
    "patronage.web.portal.profile",
    "patronage.web.portal.pwa",
    "patronage.web.portal.landing",
]


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for name in [*CONSOLE, *PORTAL]:
        app.include_router(importlib.import_module(name).router)
