"""One Jinja environment for every page; each render gets its language's functions in its context.

Pages are sent with a strict Content-Security-Policy (scripts only from this server, no inline script),
``no-store`` caching (they hold personal data) and the usual hardening headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from patronage import __version__
from patronage.web.formatting import Formatter
from patronage.web.i18n import LANGUAGE_NAMES, SUPPORTED, translator

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; worker-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _json_script(value: Any) -> Markup:
    """JSON safe to place inside <script type="application/json"> (no closing tag can appear)."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above for the script context


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "xml"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
env.filters["json_script"] = _json_script
env.globals.update(version=__version__, languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED])


def context_for(language: str, timezone: str = "UTC") -> dict[str, Any]:
    """The per-language part of every template context (functions, not shared state: thread-safe)."""
    tr = translator(language)
    return {"_": tr.gettext, "ngettext": tr.ngettext, "lang": language, "fmt": Formatter(language, timezone)}


def render_text(template: str, context: Mapping[str, Any]) -> str:
    return env.get_template(template).render(context)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    language: str,
    timezone: str = "UTC",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    ctx: dict[str, Any] = {"request": request, **context_for(language, timezone), **context}
    response = HTMLResponse(env.get_template(template).render(ctx), status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Language"] = language
    if headers:
        response.headers.update(headers)
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
