"""HTTP routes for segments: CRUD, live preview, members, CSV upload, field catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.kit.errors import field_error
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.kit.pagination import Page, decode_cursor, encode_cursor
from patronage.segments import csv_import, fields, service
from patronage.segments.models import Segment, SegmentMembership
from patronage.segments.repository import SegmentRepository
from patronage.segments.schemas import (
    EvaluationOut,
    MemberOut,
    PreviewOut,
    PreviewRequest,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
    UploadResult,
)
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/segments", tags=["segments"])
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.SEGMENTS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.SEGMENTS_MANAGE))]
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


@router.get("/fields")
def list_fields(principal: Reader) -> list[dict[str, Any]]:
    return fields.catalog()


@router.get("", response_model=list[SegmentOut])
def list_segments(session: DbSession, principal: Reader) -> list[Segment]:
    repo = SegmentRepository(session, principal.workspace_id)
    return list(session.scalars(repo.select().order_by(Segment.id)))


@router.post("", response_model=SegmentOut, status_code=status.HTTP_201_CREATED)
def create_segment(body: SegmentCreate, session: DbSession, principal: Manager) -> Segment:
    return service.create_segment(session, principal.workspace_id, body, actor=principal.actor)


@router.post("/preview", response_model=PreviewOut)
def preview(body: PreviewRequest, session: DbSession, principal: Reader) -> PreviewOut:
    return service.preview(session, principal.workspace_id, body.definition, body.sample_size)


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: int, session: DbSession, principal: Reader) -> Segment:
    return SegmentRepository(session, principal.workspace_id).get_or_404(segment_id)


@router.patch("/{segment_id}", response_model=SegmentOut)
def update_segment(segment_id: int, body: SegmentUpdate, session: DbSession, principal: Manager) -> Segment:
    return service.update_segment(session, principal.workspace_id, segment_id, body, actor=principal.actor)


@router.delete("/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_segment(segment_id: int, session: DbSession, principal: Manager) -> Response:
    service.delete_segment(session, principal.workspace_id, segment_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{segment_id}/evaluate", response_model=EvaluationOut)
def evaluate(segment_id: int, session: DbSession, principal: Manager) -> EvaluationOut:
    segment = SegmentRepository(session, principal.workspace_id).get_or_404(segment_id, for_update=True)
    entered, exited = service.evaluate_segment(session, principal.workspace_id, segment)
    return EvaluationOut(segment_id=segment.id, member_count=segment.member_count, entered=len(entered),
                         exited=len(exited))


@router.get("/{segment_id}/members", response_model=Page[MemberOut])
def members(
    segment_id: int,
    session: DbSession,
    principal: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[MemberOut]:
    SegmentRepository(session, principal.workspace_id).get_or_404(segment_id)
    stmt = (
        select(SegmentMembership.customer_id, Customer.external_id, Customer.email, SegmentMembership.entered_at)
        .join(Customer, Customer.id == SegmentMembership.customer_id)
        .where(SegmentMembership.workspace_id == principal.workspace_id, SegmentMembership.segment_id == segment_id)
    )
    if cursor:
        (after,) = decode_cursor(cursor) or [None]
        if not isinstance(after, int):
            raise field_error("cursor", "not a cursor returned by this API")
        stmt = stmt.where(SegmentMembership.customer_id > after)
    rows = session.execute(stmt.order_by(SegmentMembership.customer_id).limit(limit + 1)).all()
    items = [MemberOut(customer_id=r[0], external_id=r[1], email=r[2], entered_at=r[3]) for r in rows[:limit]]
    next_cursor = encode_cursor([items[-1].customer_id]) if len(rows) > limit else None
    return Page[MemberOut](items=items, next_cursor=next_cursor)


@router.post("/{segment_id}/upload", response_model=UploadResult)
async def upload(
    segment_id: int,
    request: Request,
    session: DbSession,
    principal: Manager,
    mode: Annotated[str, Query(pattern="^(replace|add)$")] = "replace",
) -> UploadResult:
    """Members of a static segment from a CSV body (``text/csv``) or a multipart ``file`` field."""
    content = await _csv_body(request)
    from starlette.concurrency import run_in_threadpool

    def apply() -> UploadResult:
        segment = SegmentRepository(session, principal.workspace_id).get_or_404(segment_id, for_update=True)
        return csv_import.upload(session, principal.workspace_id, segment, content, replace=mode == "replace")

    return await run_in_threadpool(apply)


async def _csv_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload_file = form.get("file")
        if upload_file is None or isinstance(upload_file, str):
            raise field_error("file", "send the CSV as a multipart field named 'file'")
        data = await upload_file.read()
    else:
        data = await request.body()
    if len(data) > MAX_UPLOAD_BYTES:
        raise field_error("file", f"the CSV is larger than {MAX_UPLOAD_BYTES} bytes")
    return data
