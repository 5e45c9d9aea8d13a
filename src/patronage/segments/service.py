"""Segments: definitions, live preview, bulk and per-customer evaluation, static lists, membership checks.

Membership changes emit ``segment.entered`` / ``segment.exited`` domain events (payload: segment_id,
segment_name, customer_id) in the same transaction as the change, so journeys can trigger on them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, field_error
from patronage.kit.jobs.queue import record_events_bulk
from patronage.kit.memo import forget
from patronage.segments import compiler
from patronage.segments.models import Segment, SegmentMembership
from patronage.segments.repository import DYNAMIC_MEMO, MembershipRepository, SegmentRepository
from patronage.segments.schemas import CustomerSample, PreviewOut, SegmentCreate, SegmentUpdate

log = logging.getLogger("patronage.segments")
ENTERED, EXITED = "segment.entered", "segment.exited"
INSERT_CHUNK = 1000


# ---- membership checks (used by rewards and earning rules) --------------------------------------------
def is_member(session: Session, workspace_id: int, segment_id: int, customer_id: int) -> bool:
    """Whether the customer is currently in the segment (static list or kept-current dynamic result)."""
    return MembershipRepository(session, workspace_id).is_member(segment_id, customer_id)


def in_any(session: Session, workspace_id: int, customer_id: int, segment_ids: Sequence[int]) -> bool:
    return bool(MembershipRepository(session, workspace_id).segments_of(customer_id) & set(segment_ids))


def _register_with_rewards() -> None:
    try:
        from patronage.rewards.segments import register_segment_checker
    except ModuleNotFoundError:
        return
    register_segment_checker(in_any)


_register_with_rewards()


# ---- definitions ----------------------------------------------------------------------------------------
def _check_definition(kind: str, definition: dict[str, Any] | None) -> None:
    if kind == "dynamic":
        if definition is None:
            raise field_error("definition", "a dynamic segment needs a definition (a condition tree)")
        compiler.validate(definition)
    elif definition is not None:
        raise field_error("definition", "a static segment has no definition; upload its members instead")


def create_segment(session: Session, workspace_id: int, data: SegmentCreate, *, actor: str) -> Segment:
    repo = SegmentRepository(session, workspace_id)
    _check_definition(data.kind, data.definition)
    if repo.by_name(data.name) is not None:
        raise Conflict(f"a segment named {data.name!r} already exists")
    segment = repo.new(name=data.name, description=data.description, kind=data.kind, definition=data.definition)
    audit(session, workspace_id=workspace_id, actor=actor, action="segment.created", subject_type="segment",
          subject_id=segment.id, data={"name": segment.name, "kind": segment.kind})
    if segment.kind == "dynamic":
        forget(session, (DYNAMIC_MEMO, workspace_id))  # events later in this transaction re-evaluate
        evaluate_segment(session, workspace_id, segment)
    return segment


def update_segment(
    session: Session, workspace_id: int, segment_id: int, data: SegmentUpdate, *, actor: str
) -> Segment:
    repo = SegmentRepository(session, workspace_id)
    segment = repo.get_or_404(segment_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] != segment.name:
        if changes["name"] is None or repo.by_name(changes["name"]) is not None:
            raise Conflict(f"a segment named {changes['name']!r} already exists")
        segment.name = changes["name"]
    if changes.get("description") is not None:
        segment.description = changes["description"]
    if "definition" in changes:
        _check_definition(segment.kind, changes["definition"])
        segment.definition = changes["definition"]
    audit(session, workspace_id=workspace_id, actor=actor, action="segment.updated", subject_type="segment",
          subject_id=segment.id, data={k: v for k, v in changes.items() if k != "definition"})
    session.flush()
    if "definition" in changes and segment.kind == "dynamic":
        evaluate_segment(session, workspace_id, segment)
    return segment


def delete_segment(session: Session, workspace_id: int, segment_id: int, *, actor: str) -> None:
    segment = SegmentRepository(session, workspace_id).get_or_404(segment_id, for_update=True)
    members = sorted(MembershipRepository(session, workspace_id).member_ids(segment.id))
    _emit(session, workspace_id, segment, EXITED, members)
    session.delete(segment)
    audit(session, workspace_id=workspace_id, actor=actor, action="segment.deleted", subject_type="segment",
          subject_id=segment_id, data={"name": segment.name, "members": len(members)})
    session.flush()


# ---- preview and evaluation -------------------------------------------------------------------------------
def preview(session: Session, workspace_id: int, definition: dict[str, Any], sample_size: int = 10) -> PreviewOut:
    """Live count and a sample of the customers a definition matches (nothing is stored)."""
    node = compiler.validate(definition)
    ids = compiler.matching_ids(node, workspace_id, utcnow()).subquery()
    count = session.scalar(select(func.count()).select_from(ids)) or 0
    sample: list[CustomerSample] = []
    if sample_size:
        stmt = select(Customer).where(Customer.id.in_(select(ids.c.id))).order_by(Customer.id).limit(sample_size)
        sample = [CustomerSample.model_validate(c) for c in session.scalars(stmt)]
    return PreviewOut(count=int(count), sample=sample)


def _emit(session: Session, workspace_id: int, segment: Segment, kind: str, customer_ids: Sequence[int]) -> None:
    if customer_ids:
        record_events_bulk(session, workspace_id, [
            (kind, {"segment_id": segment.id, "segment_name": segment.name, "customer_id": cid})
            for cid in customer_ids
        ])


def _add_members(session: Session, workspace_id: int, segment: Segment, customer_ids: Sequence[int]) -> None:
    now = utcnow()
    rows = [{"segment_id": segment.id, "customer_id": cid, "workspace_id": workspace_id, "entered_at": now}
            for cid in customer_ids]
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(SegmentMembership), rows[start : start + INSERT_CHUNK])


def apply_membership(
    session: Session, workspace_id: int, segment: Segment, wanted: set[int]
) -> tuple[list[int], list[int]]:
    """Make the segment's members exactly ``wanted``; emits the transitions; returns (entered, exited)."""
    members = MembershipRepository(session, workspace_id)
    current = members.member_ids(segment.id)
    entered, exited = sorted(wanted - current), sorted(current - wanted)
    members.remove(segment.id, exited)
    _add_members(session, workspace_id, segment, entered)
    _emit(session, workspace_id, segment, ENTERED, entered)
    _emit(session, workspace_id, segment, EXITED, exited)
    segment.member_count = len(wanted)
    segment.evaluated_at = utcnow()
    session.flush()
    return entered, exited


def evaluate_segment(session: Session, workspace_id: int, segment: Segment) -> tuple[list[int], list[int]]:
    """Bulk evaluation of a dynamic segment against every eligible customer."""
    if segment.kind != "dynamic" or segment.definition is None:
        return [], []
    node = compiler.validate(segment.definition)
    wanted = set(session.scalars(compiler.matching_ids(node, workspace_id, utcnow())))
    return apply_membership(session, workspace_id, segment, wanted)


def evaluate_all(session: Session, workspace_id: int) -> dict[int, tuple[int, int]]:
    out = {}
    for segment in SegmentRepository(session, workspace_id).dynamic():
        try:
            entered, exited = evaluate_segment(session, workspace_id, segment)
        except Exception:  # one broken definition (a field whose domain was removed) must not stop the rest
            log.exception("segment evaluation failed", extra={"segment_id": segment.id})
            continue
        out[segment.id] = (len(entered), len(exited))
    return out


def _bump(session: Session, segment_id: int, delta: int) -> None:
    session.execute(update(Segment).where(Segment.id == segment_id).values(member_count=Segment.member_count + delta))


def forget_customer(session: Session, workspace_id: int, customer_id: int) -> None:
    """An erased or merged-away profile leaves every segment (static ones too)."""
    members = MembershipRepository(session, workspace_id)
    for segment_id in sorted(members.segments_of(customer_id)):
        segment = session.get(Segment, segment_id)
        if segment is None:
            continue
        members.remove(segment_id, [customer_id])
        _bump(session, segment_id, -1)
        _emit(session, workspace_id, segment, EXITED, [customer_id])
    session.flush()


def _dynamic_columns(workspace_id: int, segments: Sequence[Segment]) -> list[Any]:
    """One 0/1 column per dynamic segment: whether the customer row in scope matches its definition."""
    from patronage.segments import fields

    ctx = fields.Context(workspace_id, utcnow())
    return [
        case((compiler.compile_node(compiler.validate(segment.definition), ctx), 1), else_=0).label(f"s{segment.id}")
        for segment in segments
    ]


def evaluate_customer(session: Session, workspace_id: int, customer_id: int) -> dict[int, bool]:
    """Re-evaluate every dynamic segment for one customer (after something about them changed)."""
    segments = SegmentRepository(session, workspace_id).dynamic()
    members = MembershipRepository(session, workspace_id)
    current = members.segments_of(customer_id)
    customer = session.get(Customer, customer_id)
    eligible = (
        customer is not None and customer.workspace_id == workspace_id
        and customer.merged_into_id is None and customer.erased_at is None
    )
    results: dict[int, bool] = {}
    if eligible and segments:
        columns = _dynamic_columns(workspace_id, segments)
        row = session.execute(select(*columns).where(Customer.id == customer_id)).one()
        results = {segment.id: bool(value) for segment, value in zip(segments, row, strict=True)}
    else:
        results = {segment.id: False for segment in segments}
    for segment in segments:
        inside, was = results[segment.id], segment.id in current
        if inside and not was:
            _add_members(session, workspace_id, segment, [customer_id])
            _bump(session, segment.id, +1)
            _emit(session, workspace_id, segment, ENTERED, [customer_id])
        elif was and not inside:
            members.remove(segment.id, [customer_id])
            _bump(session, segment.id, -1)
            _emit(session, workspace_id, segment, EXITED, [customer_id])
    session.flush()
    return results


def evaluate_customers(session: Session, workspace_id: int, customer_ids: Sequence[int]) -> None:
    """``evaluate_customer`` for each customer in turn, set-based: the same memberships, counters and
    events (in the same order), with a handful of statements for the lot."""
    chunk: list[int] = []
    for customer_id in customer_ids:
        # A customer met again is evaluated after its first round's changes (a condition may test its
        # segment memberships), so cut the run there.
        if customer_id in chunk:
            _evaluate_chunk(session, workspace_id, chunk)
            chunk = []
        chunk.append(customer_id)
    if chunk:
        _evaluate_chunk(session, workspace_id, chunk)


def _evaluate_chunk(session: Session, workspace_id: int, customer_ids: list[int]) -> None:
    """Distinct customers: read every membership and every segment's verdict for all of them first,
    exactly as each single evaluation reads before it writes, then write all transitions at once."""
    segments = SegmentRepository(session, workspace_id).dynamic()
    if not segments:
        return
    stmt = select(SegmentMembership.segment_id, SegmentMembership.customer_id).where(
        SegmentMembership.workspace_id == workspace_id, SegmentMembership.customer_id.in_(customer_ids)
    )
    current = {(sid, cid) for sid, cid in session.execute(stmt)}
    eligible = select(Customer.id, *_dynamic_columns(workspace_id, segments)).where(
        Customer.id.in_(customer_ids), Customer.workspace_id == workspace_id,
        Customer.merged_into_id.is_(None), Customer.erased_at.is_(None),
    )
    verdicts = {row[0]: row[1:] for row in session.execute(eligible)}  # ineligible customers: in no segment
    entered: dict[int, list[int]] = {segment.id: [] for segment in segments}
    exited: dict[int, list[int]] = {segment.id: [] for segment in segments}
    events: list[tuple[str, dict[str, Any]]] = []
    for customer_id in customer_ids:
        row = verdicts.get(customer_id)
        for i, segment in enumerate(segments):
            inside, was = row is not None and bool(row[i]), (segment.id, customer_id) in current
            if inside == was:
                continue
            (entered if inside else exited)[segment.id].append(customer_id)
            events.append((ENTERED if inside else EXITED,
                           {"segment_id": segment.id, "segment_name": segment.name, "customer_id": customer_id}))
    if not events:
        return
    now = utcnow()
    rows = [{"segment_id": sid, "customer_id": cid, "workspace_id": workspace_id, "entered_at": now}
            for sid, ids in entered.items() for cid in ids]
    if rows:
        session.execute(insert(SegmentMembership), rows)
    members = MembershipRepository(session, workspace_id)
    for segment_id, ids in exited.items():
        members.remove(segment_id, ids)
    for segment_id, ids in entered.items():
        if delta := len(ids) - len(exited[segment_id]):
            _bump(session, segment_id, delta)  # relative, like the single +1/-1s (rule 7)
    record_events_bulk(session, workspace_id, events)
    session.flush()
