"""Segment API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from patronage.kit.schemas import Input, Output


class SegmentCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    kind: Literal["dynamic", "static"] = "dynamic"
    definition: dict[str, Any] | None = None


class SegmentUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    definition: dict[str, Any] | None = None


class SegmentOut(Output):
    id: int
    name: str
    description: str
    kind: str
    definition: dict[str, Any] | None
    member_count: int
    evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PreviewRequest(Input):
    definition: dict[str, Any]
    sample_size: int = Field(default=10, ge=0, le=100)


class CustomerSample(Output):
    id: int
    external_id: str | None
    email: str | None
    first_name: str | None
    last_name: str | None


class PreviewOut(Output):
    count: int
    sample: list[CustomerSample]


class MemberOut(Output):
    customer_id: int
    external_id: str | None
    email: str | None
    entered_at: datetime


class UnmatchedRow(Output):
    row: int
    value: str
    reason: str


class UploadResult(Output):
    rows: int
    matched: int
    added: int
    removed: int
    unmatched: list[UnmatchedRow]
    member_count: int


class EvaluationOut(Output):
    segment_id: int
    member_count: int
    entered: int
    exited: int
