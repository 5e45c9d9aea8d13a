"""Domain errors and their RFC 9457 problem+json rendering. Every error has a stable ``code``."""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_JSON = "application/problem+json"


class PatronageError(Exception):
    """Base of every error a client may see. Subclasses fix ``status`` and ``code``."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": f"https://patronage.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            problem["instance"] = instance
        problem.update(self.extra)
        return problem


class ValidationFailed(PatronageError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"


class ValueNotStorable(ValidationFailed):
    code = "value_not_storable"
    title = "A value in the request is out of the range the database can store"


class MalformedBody(PatronageError):
    status = 400
    code = "malformed_json"
    title = "The request body is not valid JSON"


class NotFound(PatronageError):
    status = 404
    code = "not_found"
    title = "Not found"


class Unauthenticated(PatronageError):
    status = 401
    code = "unauthenticated"
    title = "Missing or invalid credentials"


class Forbidden(PatronageError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class Conflict(PatronageError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(PatronageError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class RateLimited(PatronageError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class TryAgain(PatronageError):
    """A concurrent transaction got in the way (a deadlock, a serialization failure, a busy database):
    this request's transaction was rolled back whole, and the same request sent again will succeed."""

    status = 503
    code = "concurrent_update"
    title = "Concurrent update; send the request again"


class CsrfFailed(PatronageError):
    status = 403
    code = "csrf_failed"
    title = "Missing or invalid CSRF token"


def field_error(field: str, message: str, *, code: str = "invalid") -> ValidationFailed:
    """A 422 naming one field, shaped like the errors FastAPI's validation produces."""
    return ValidationFailed(
        f"{field}: {message}", errors=[{"field": field, "message": message, "type": code}]
    )
