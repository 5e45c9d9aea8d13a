"""Pydantic bases: inputs forbid unknown fields (no mass assignment); outputs read from ORM objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

# What both databases can store: 64-bit integers, and text without NUL characters (PostgreSQL refuses
# NUL in text and JSON). A value outside these is a client error naming its field, never a 500.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
# Counts, stocks, limits and points live in 32-bit integer columns on PostgreSQL; a bound well inside them.
MAX_COUNT = 1_000_000_000


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        return f"must be between {MIN_INT} and {MAX_INT}"
    if isinstance(value, str) and "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value.astimezone(UTC)  # stored in UTC: 0001-01-01T00:00+01:00 has no UTC instant
        except OverflowError:
            return "is out of the range of representable instants"
    return None


def storable_problem(value: Any) -> str | None:
    """Why ``value`` (scalars, and the contents of lists and dicts) cannot be stored, or None."""
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        return _scalar_problem(value)
    for item in items:
        problem = storable_problem(item)
        if problem:
            return problem
    return None


class Input(BaseModel):
    """A request body. Unknown fields are an error, never silently ignored or assigned."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after", check_fields=False)
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = storable_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)
