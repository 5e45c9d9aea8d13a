"""The referral landing page ``/r/{code}``: the link members share.

Public and cacheless. It shows the referrer's first name (nothing else about them), the welcome offer and
how to claim it, counts one visit per browser for the referral statistics, and answers unknown or
disabled codes with a friendly 404. Rate limits per client address make guessing codes pointless: unknown
codes spend a small budget that is checked *before* each look-up, so a client that has spent it learns
nothing more, whichever code it tries; pages shown spend a larger one. Text that cannot be a code is
answered at once, with no look-up and nothing counted.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from patronage.config import Settings
from patronage.kit import ratelimit
from patronage.kit.http.route import after_request
from patronage.ledger.program import load_program
from patronage.referrals import landing
from patronage.rewards.rules import format_code
from patronage.web.console.deps import DbSession
from patronage.web.i18n import negotiate
from patronage.web.portal.deps import Portal
from patronage.web.rendering import render
from patronage.web.route import WebRoute

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# The defaults; docs/referrals.md lists them.
VISITS_BY_IP = ratelimit.Limit("referral_page_ip", 60, timedelta(minutes=1))
UNKNOWN_CODES_BY_IP = ratelimit.Limit("referral_miss_ip", 20, timedelta(minutes=15))
SEEN_COOKIE = "patronage_ref"
SEEN_DAYS = 30


@router.get("/r/{code}")
def referral_page(request: Request, *, session: DbSession, code: str) -> Response:
    db = request.app.state.db
    subject = f"ip:{request.client.host if request.client else None}"
    found = None
    if landing.plausible(code):  # anything else cannot be a code: answered without a look-up or a count
        ratelimit.check(db, UNKNOWN_CODES_BY_IP, subject)  # a spent budget refuses before the look-up
        found = landing.find(session, code)
        if found is None:
            ratelimit.hit(db, UNKNOWN_CODES_BY_IP, subject)
        else:
            ratelimit.hit(db, VISITS_BY_IP, subject)  # bounds what a cookie-less client adds to the clicks
    if found is None:
        language = negotiate(request.query_params.get("lang"), accept_language=request.headers.get("accept-language"))
        return render(request, "portal/referral_missing.html", {}, language=language, status_code=404,
                      headers={"X-Robots-Tag": "noindex"})
    ws = found.workspace
    language = negotiate(request.query_params.get("lang"), ws.locale,
                         accept_language=request.headers.get("accept-language"))
    ctx = Portal(request, session, ws, None, None, language)
    response = ctx.render("portal/referral.html", {
        "landing": found, "code_text": format_code(found.code), "points_name": load_program(session, ws.id).points_name,
        "no_service_worker": True,
    }, headers={"X-Robots-Tag": "noindex"})
    if request.cookies.get(SEEN_COOKIE) != found.code:  # one visit per browser and code, not per reload
        after_request(request, lambda: landing.record_visit(db, ws.id, found.code_id))
        settings: Settings = request.app.state.settings
        response.set_cookie(SEEN_COOKIE, found.code, max_age=SEEN_DAYS * 86400, httponly=True,
                            secure=settings.cookie_secure, samesite="lax", path="/r/")
    return response
