"""The portal as an installable web app: manifest, service worker, offline page.

The service worker (templates/portal/sw.js) caches only the offline shell: the offline page, which
shows no personal data, and the portal's static files. Pages and API answers always come from the
network and are never stored; when the network is gone, navigation shows the offline page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from patronage import __version__
from patronage.web.console.deps import DbSession
from patronage.web.portal.deps import portal, workspace_by_slug
from patronage.web.rendering import render_text
from patronage.web.route import WebRoute

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def shell(slug: str) -> list[str]:
    """What the service worker stores at install: nothing that depends on who is signed in."""
    return [
        f"/portal/{slug}/offline",
        f"/static/portal.css?v={__version__}",
        f"/static/portal.js?v={__version__}",
        "/static/icons/icon-192.png",
    ]


@router.get("/portal/{slug}/manifest.webmanifest")
def manifest(request: Request, *, session: DbSession, slug: str) -> Response:
    ctx = portal(request, session, slug, member=False)
    ws = ctx.workspace
    return JSONResponse({
        "name": ctx._("%(shop)s rewards") % {"shop": ws.name},
        "short_name": ws.name[:12],
        "lang": ctx.language,
        "start_url": f"/portal/{ws.slug}/",
        "scope": f"/portal/{ws.slug}/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": ctx.brand.primary,
        "icons": [
            {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "/static/icons/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"})


@router.get("/portal/{slug}/sw.js")
def service_worker(session: DbSession, slug: str) -> Response:
    workspace = workspace_by_slug(session, slug)
    body = render_text("portal/sw.js", {"cache": f"patronage-portal-{__version__}-{workspace.slug}",
                                        "shell": shell(workspace.slug), "offline": f"/portal/{workspace.slug}/offline"})
    return Response(body, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/portal/{slug}/offline")
def offline(request: Request, *, session: DbSession, slug: str) -> Response:
    ctx = portal(request, session, slug, member=False)
    ctx.member, ctx.customer = None, None  # the page is cached for everyone: nothing personal on it
    response = ctx.render("portal/offline.html")
    response.headers["Cache-Control"] = "no-cache"
    return response
