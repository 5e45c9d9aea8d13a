"""The route class of every browser page: the API's unit of work, with errors shown as HTML pages.

A domain error (404, 403, 409, 422...) raised by a page has already rolled the request's transaction
back when it reaches this class; it becomes an HTML page in the visitor's language instead of
problem+json. ``SignInRequired`` sends the visitor to the sign-in page (HTMX requests get
``HX-Redirect`` so the whole page moves, not a fragment).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse

from patronage.kit.errors import PatronageError, RateLimited
from patronage.kit.http.problems import validation_problem
from patronage.kit.http.route import UnitOfWorkRoute
from patronage.web.i18n import negotiate, translator
from patronage.web.rendering import is_htmx, render

LANG_COOKIE = "patronage_lang"


class SignInRequired(Exception):
    def __init__(self, sign_in_path: str, next_path: str | None = None) -> None:
        super().__init__(sign_in_path)
        self.location = sign_in_path if not next_path else f"{sign_in_path}?next={quote(next_path, safe='/')}"


def redirect(request: Request, location: str) -> Response:
    """303 to ``location``; for HTMX requests an ``HX-Redirect`` the page follows as a whole."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def visitor_language(request: Request) -> str:
    return negotiate(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                     accept_language=request.headers.get("accept-language"))


def error_page(request: Request, error: PatronageError) -> Response:
    language = visitor_language(request)
    _ = translator(language).gettext
    titles = {
        401: _("Please sign in"),
        403: _("You cannot do this"),
        404: _("Not found"),
        409: _("This cannot be done right now"),
        413: _("That is too large"),
        422: _("Please check what you entered"),
        429: _("Too many attempts"),
    }
    headers = {}
    if isinstance(error, RateLimited) and "retry_after" in error.extra:
        headers["Retry-After"] = str(error.extra["retry_after"])
    parts = request.url.path.split("/")
    back = f"/portal/{parts[2]}/" if len(parts) > 2 and parts[1] == "portal" and parts[2] else "/"
    return render(
        request, "error.html",
        {"title": titles.get(error.status, _("Something went wrong")), "detail": error.detail,
         "status": error.status, "code": error.code, "back": back},
        language=language, status_code=error.status, headers=headers,
    )


class WebRoute(UnitOfWorkRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except SignInRequired as needed:
                return redirect(request, needed.location)
            except RequestValidationError as exc:
                return error_page(request, validation_problem(list(exc.errors())))
            except PatronageError as exc:
                return error_page(request, exc)

        return handler
