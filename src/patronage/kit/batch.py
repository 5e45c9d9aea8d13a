"""Batch writes with per-item results: one bad item never sinks the batch, and none is half-written.

Each item runs in its own SAVEPOINT inside the request's transaction: a failing item rolls back only
its own writes and is reported with its index and reason; the rest commit together at the boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patronage.kit.errors import PatronageError, field_error
from patronage.kit.http.problems import validation_problem

MAX_BATCH = 1000
In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")


class ItemResult(BaseModel, Generic[Out]):
    index: int
    status: Literal["created", "updated", "unchanged", "error"]
    result: Out | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel, Generic[Out]):
    succeeded: int
    failed: int
    items: list[ItemResult[Out]]


def check_batch_size(items: Sequence[Any]) -> None:
    if not items:
        raise field_error("items", "send at least one item")
    if len(items) > MAX_BATCH:
        raise field_error("items", f"at most {MAX_BATCH} items per request; got {len(items)}")


def run_batch(
    session: Session,
    raw_items: Sequence[Any],
    schema: type[In],
    apply: Callable[[Session, In], tuple[Literal["created", "updated", "unchanged"], Out]],
) -> BatchResult[Out]:
    """Validate and apply each raw item; returns per-item outcomes in input order."""
    check_batch_size(raw_items)
    results: list[ItemResult[Out]] = []
    for index, raw in enumerate(raw_items):
        try:
            item = schema.model_validate(raw)
        except ValidationError as exc:
            problem = validation_problem([dict(e) for e in exc.errors()])
            results.append(ItemResult(index=index, status="error", error=problem.to_problem()))
            continue
        savepoint = session.begin_nested()
        try:
            status, out = apply(session, item)
            savepoint.commit()
            results.append(ItemResult(index=index, status=status, result=out))
        except PatronageError as exc:
            savepoint.rollback()
            results.append(ItemResult(index=index, status="error", error=exc.to_problem()))
        except IntegrityError as exc:
            savepoint.rollback()
            error = PatronageError(f"conflicts with existing data: {exc.orig}")
            results.append(ItemResult(index=index, status="error", error=error.to_problem()))
    failed = sum(1 for r in results if r.status == "error")
    return BatchResult(succeeded=len(results) - failed, failed=failed, items=results)
