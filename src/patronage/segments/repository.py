"""Segment queries, scoped to one workspace."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from patronage.kit.repository import WorkspaceRepository
from patronage.segments.models import Segment, SegmentMembership

# ``kit.memo`` key of "has the workspace a dynamic segment" (segments.tasks), forgotten when one is made.
DYNAMIC_MEMO = "segments.any_dynamic"


class SegmentRepository(WorkspaceRepository[Segment]):
    model = Segment

    def by_name(self, name: str) -> Segment | None:
        return self.session.scalars(self.select().where(Segment.name == name)).one_or_none()

    def dynamic(self) -> list[Segment]:
        return list(self.session.scalars(self.select().where(Segment.kind == "dynamic").order_by(Segment.id)))

    def any_dynamic(self) -> bool:
        query = select(Segment.id).where(Segment.workspace_id == self.workspace_id, Segment.kind == "dynamic")
        return self.session.execute(query.limit(1)).first() is not None


class MembershipRepository:
    def __init__(self, session: object, workspace_id: int) -> None:
        from sqlalchemy.orm import Session

        assert isinstance(session, Session)
        self.session = session
        self.workspace_id = workspace_id

    def member_ids(self, segment_id: int) -> set[int]:
        stmt = select(SegmentMembership.customer_id).where(
            SegmentMembership.workspace_id == self.workspace_id, SegmentMembership.segment_id == segment_id
        )
        return set(self.session.scalars(stmt))

    def is_member(self, segment_id: int, customer_id: int) -> bool:
        stmt = select(SegmentMembership.customer_id).where(
            SegmentMembership.workspace_id == self.workspace_id, SegmentMembership.segment_id == segment_id,
            SegmentMembership.customer_id == customer_id,
        )
        return self.session.scalar(stmt) is not None

    def segments_of(self, customer_id: int) -> set[int]:
        stmt = select(SegmentMembership.segment_id).where(
            SegmentMembership.workspace_id == self.workspace_id, SegmentMembership.customer_id == customer_id
        )
        return set(self.session.scalars(stmt))

    def count(self, segment_id: int) -> int:
        stmt = select(func.count()).select_from(SegmentMembership).where(
            SegmentMembership.workspace_id == self.workspace_id, SegmentMembership.segment_id == segment_id
        )
        return int(self.session.scalar(stmt) or 0)

    def remove(self, segment_id: int, customer_ids: list[int]) -> None:
        for start in range(0, len(customer_ids), 500):
            self.session.execute(delete(SegmentMembership).where(
                SegmentMembership.workspace_id == self.workspace_id, SegmentMembership.segment_id == segment_id,
                SegmentMembership.customer_id.in_(customer_ids[start : start + 500]),
            ))

    def remove_customer(self, customer_id: int) -> set[int]:
        segments = self.segments_of(customer_id)
        self.session.execute(delete(SegmentMembership).where(
            SegmentMembership.workspace_id == self.workspace_id, SegmentMembership.customer_id == customer_id
        ))
        return segments
