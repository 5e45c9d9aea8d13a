"""Static segments from a CSV of external ids or emails; rows that match nobody are reported."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.customers.resolution import find_customer_ids
from patronage.kit.errors import field_error
from patronage.segments.models import Segment
from patronage.segments.repository import MembershipRepository
from patronage.segments.schemas import UnmatchedRow, UploadResult
from patronage.segments.service import apply_membership

MAX_ROWS = 200_000
MAX_UNMATCHED_REPORTED = 1000
COLUMNS = ("external_id", "email")


def _rows(content: bytes) -> tuple[str, list[tuple[int, str]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise field_error("file", "the CSV must be UTF-8") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise field_error("file", "the CSV is empty")
    names = [h.strip().lower() for h in header]
    kind = next((c for c in COLUMNS if c in names), None)
    if kind is None:
        raise field_error("file", "the first row must name a column external_id or email")
    index = names.index(kind)
    values: list[tuple[int, str]] = []
    for number, row in enumerate(reader, start=2):
        value = row[index].strip() if index < len(row) else ""
        if not value and not any(cell.strip() for cell in row):
            continue  # a blank line
        values.append((number, value))
        if len(values) > MAX_ROWS:
            raise field_error("file", f"at most {MAX_ROWS} rows per upload")
    return kind, values


def upload(
    session: Session, workspace_id: int, segment: Segment, content: bytes, *, replace: bool = True
) -> UploadResult:
    """Set (``replace``) or extend a static segment's members from a CSV; unmatched rows are listed."""
    if segment.kind != "static":
        raise field_error("segment", "members can be uploaded only to static segments")
    kind, rows = _rows(content)
    keys = {(kind, value.lower() if kind == "email" else value) for _, value in rows if value}
    found = find_customer_ids(session, workspace_id, keys)
    # Profiles whose email or external id is on the profile but not (yet) an identity row.
    column = func.lower(Customer.email) if kind == "email" else Customer.external_id
    missing = [v for k, v in keys if (k, v) not in found]
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        stmt = select(column, Customer.id).where(
            Customer.workspace_id == workspace_id, column.in_(chunk), Customer.merged_into_id.is_(None),
        )
        for value, customer_id in session.execute(stmt):
            found.setdefault((kind, value), customer_id)
    alive = set(session.scalars(select(Customer.id).where(
        Customer.workspace_id == workspace_id, Customer.id.in_(set(found.values())), Customer.erased_at.is_(None)
    ))) if found else set()
    matched: set[int] = set()
    unmatched: list[UnmatchedRow] = []
    for number, value in rows:
        key = (kind, value.lower() if kind == "email" else value)
        customer_id = found.get(key)
        if not value:
            reason = f"empty {kind}"
        elif customer_id is None:
            reason = f"no customer with this {kind}"
        elif customer_id not in alive:
            reason = "the customer was erased"
        else:
            matched.add(customer_id)
            continue
        if len(unmatched) < MAX_UNMATCHED_REPORTED:
            unmatched.append(UnmatchedRow(row=number, value=value, reason=reason))
    wanted = matched if replace else matched | MembershipRepository(session, workspace_id).member_ids(segment.id)
    entered, exited = apply_membership(session, workspace_id, segment, wanted)
    return UploadResult(
        rows=len(rows), matched=len(matched), added=len(entered), removed=len(exited), unmatched=unmatched,
        member_count=segment.member_count,
    )
