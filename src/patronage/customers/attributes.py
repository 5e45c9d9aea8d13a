"""Custom attributes: pure validation of values against the workspace's declared types.

Every problem names its field as ``attributes.<name>`` so a client can point at the right input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from patronage.kit.errors import ValidationFailed

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_STRING = 1000
MAX_ATTRIBUTES = 100


class AttributeType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    ENUM = "enum"


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    type: AttributeType
    allowed_values: tuple[str, ...] = ()
    required: bool = False


@dataclass
class _Errors:
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, name: str, message: str, code: str = "invalid") -> None:
        self.items.append({"field": f"attributes.{name}", "message": message, "type": code})

    def raise_if_any(self) -> None:
        if self.items:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in self.items[:5])
            raise ValidationFailed(summary, errors=self.items)


def check_value(spec: AttributeSpec, value: Any) -> Any:
    """The stored form of ``value`` for ``spec``; raises ``ValueError`` explaining a mismatch."""
    if spec.type is AttributeType.STRING:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if len(value) > MAX_STRING:
            raise ValueError(f"at most {MAX_STRING} characters")
        return value
    if spec.type is AttributeType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if spec.type is AttributeType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if spec.type is AttributeType.DATE:
        if not isinstance(value, str):
            raise ValueError("must be a date as YYYY-MM-DD")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError as exc:
            raise ValueError("must be a date as YYYY-MM-DD") from exc
    if not isinstance(value, str) or value not in spec.allowed_values:
        raise ValueError(f"must be one of {', '.join(spec.allowed_values)}")
    return value


def validate_attributes(
    specs: Mapping[str, AttributeSpec],
    changes: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
    *,
    creating: bool,
) -> dict[str, Any]:
    """The attributes after applying ``changes`` (a ``None`` value removes the attribute) to ``current``.

    Unknown names and ill-typed values are refused. Required attributes must be present when the
    profile is created, and can never be removed afterwards.
    """
    errors = _Errors()
    result = dict(current or {})
    for name, value in changes.items():
        spec = specs.get(name)
        if spec is None:
            errors.add(name, "no such attribute is defined in this workspace", "undefined_attribute")
            continue
        if value is None:
            if spec.required:
                errors.add(name, "is required and cannot be removed", "missing")
            result.pop(name, None)
            continue
        try:
            result[name] = check_value(spec, value)
        except ValueError as exc:
            errors.add(name, str(exc))
    if creating:
        for name, spec in specs.items():
            if spec.required and result.get(name) is None and name not in changes:
                errors.add(name, "is required", "missing")
    if len(result) > MAX_ATTRIBUTES:
        errors.items.append(
            {"field": "attributes", "message": f"at most {MAX_ATTRIBUTES} attributes", "type": "too_long"}
        )
    errors.raise_if_any()
    return result


def check_definition(type_: AttributeType, allowed_values: list[str]) -> list[str]:
    """The allowed values of a definition, checked: enums need distinct non-empty values, others none."""
    if type_ is AttributeType.ENUM:
        cleaned = [v.strip() for v in allowed_values]
        if not cleaned or any(not v for v in cleaned):
            raise ValueError("an enum needs at least one non-empty allowed value")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("allowed values must be distinct")
        return cleaned
    if allowed_values:
        raise ValueError("only enum attributes take allowed values")
    return []
