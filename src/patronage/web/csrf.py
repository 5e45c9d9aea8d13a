"""CSRF for forms shown before anyone is signed in (staff sign-in, member sign-in): double submit.

The page sets a random token in an HttpOnly cookie and in a hidden field; the POST must carry both,
equal. A cross-site form can make the browser send the cookie but cannot read it to fill the field.
Signed-in forms use the session's own CSRF token instead (see console/deps.py and portal/deps.py).
"""

from __future__ import annotations

from fastapi import Request, Response

from patronage.config import Settings
from patronage.kit.errors import CsrfFailed
from patronage.kit.security import constant_time_equals, new_token

LOGIN_CSRF_COOKIE = "patronage_login_csrf"
PORTAL_CSRF_COOKIE = "patronage_portal_csrf"


def token_for(request: Request, cookie: str) -> str:
    """The visitor's current token, or a new one (set it with ``remember``)."""
    return request.cookies.get(cookie) or new_token(nbytes=24)


def remember(request: Request, response: Response, cookie: str, token: str, *, path: str = "/") -> None:
    settings: Settings = request.app.state.settings
    response.set_cookie(cookie, token, httponly=True, secure=settings.cookie_secure, samesite="lax",
                        max_age=3600 * 4, path=path)


def check(request: Request, cookie: str, sent: str | None) -> str:
    """Raise 403 unless the form's token equals the cookie's; returns it."""
    expected = request.cookies.get(cookie, "")
    if not expected or not sent or not constant_time_equals(expected, sent):
        raise CsrfFailed("this form has expired; reload the page and try again")
    return expected
