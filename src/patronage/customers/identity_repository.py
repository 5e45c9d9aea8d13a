"""Queries for a profile's identifiers (external ids, e-mails, phones, devices) and its tags, scoped by workspace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, delete, insert, select

from patronage.customers.models import CustomerIdentity, CustomerTag
from patronage.kit.clock import utcnow
from patronage.kit.repository import WorkspaceRepository
from patronage.kit.upsert import insert_rows


class IdentityRepository(WorkspaceRepository[CustomerIdentity]):
    model = CustomerIdentity

    def find(self, kind: str, value: str) -> CustomerIdentity | None:
        stmt = self.select().where(CustomerIdentity.kind == kind, CustomerIdentity.value == value)
        return self.session.scalars(stmt).one_or_none()

    def for_customer(self, customer_id: int) -> list[CustomerIdentity]:
        stmt = self.select().where(CustomerIdentity.customer_id == customer_id).order_by(CustomerIdentity.id)
        return list(self.session.scalars(stmt))

    def insert_many(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """(customer id, kind, value) rows in one driver call (``kit.upsert``)."""
        if not rows:
            return
        now = utcnow()
        self.session.flush()  # a raw insert: the profiles it points to must be written first
        table = cast(Table, CustomerIdentity.__table__)
        insert_rows(self.session, table, ("workspace_id", "customer_id", "kind", "value", "created_at", "updated_at"),
                    [(self.workspace_id, cid, kind, value, now, now) for cid, kind, value in rows])

    def remove_all(self, customer_id: int) -> int:
        result = self.session.execute(
            delete(CustomerIdentity).where(
                CustomerIdentity.workspace_id == self.workspace_id, CustomerIdentity.customer_id == customer_id
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class TagRepository(WorkspaceRepository[CustomerTag]):
    model = CustomerTag

    def set_tags(self, customer_id: int, tags: Sequence[str]) -> None:
        """Make the customer's tag rows equal ``tags``."""
        stmt = select(CustomerTag.tag).where(
            CustomerTag.workspace_id == self.workspace_id, CustomerTag.customer_id == customer_id
        )
        existing = set(self.session.scalars(stmt))
        wanted = set(tags)
        gone = existing - wanted
        if gone:
            self.session.execute(
                delete(CustomerTag).where(
                    CustomerTag.workspace_id == self.workspace_id,
                    CustomerTag.customer_id == customer_id,
                    CustomerTag.tag.in_(gone),
                )
            )
        added = [t for t in tags if t not in existing]
        if added:
            now = utcnow()
            self.session.execute(
                insert(CustomerTag),
                [{"workspace_id": self.workspace_id, "customer_id": customer_id, "tag": t,
                  "created_at": now, "updated_at": now} for t in added],
            )
