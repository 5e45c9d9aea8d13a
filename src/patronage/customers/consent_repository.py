"""Queries for consent topics, evidence (append-only) and the current-state cache, scoped by workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, update

from patronage.customers.activity_repository import TimelineKey, before_clause
from patronage.customers.models import ConsentEvidence, ConsentState, ConsentTopic
from patronage.kit.repository import WorkspaceRepository


class ConsentTopicRepository(WorkspaceRepository[ConsentTopic]):
    model = ConsentTopic

    def list(self) -> list[ConsentTopic]:
        return list(self.session.scalars(self.select().order_by(ConsentTopic.key)))

    def by_key(self, key: str) -> ConsentTopic | None:
        return self.session.scalars(self.select().where(ConsentTopic.key == key)).one_or_none()


class ConsentEvidenceRepository(WorkspaceRepository[ConsentEvidence]):
    model = ConsentEvidence

    def for_customer(self, customer_id: int) -> Select[ConsentEvidence]:
        return self.select().where(ConsentEvidence.customer_id == customer_id)

    def all_for(self, customer_ids: Sequence[int]) -> list[ConsentEvidence]:
        stmt = (
            self.select()
            .where(ConsentEvidence.customer_id.in_(list(customer_ids)))
            .order_by(ConsentEvidence.occurred_at, ConsentEvidence.id)
        )
        return list(self.session.scalars(stmt))

    def for_key(self, customer_id: int, channel: str, topic: str) -> list[ConsentEvidence]:
        stmt = self.for_customer(customer_id).where(
            ConsentEvidence.channel == channel, ConsentEvidence.topic == topic
        )
        return list(self.session.scalars(stmt))

    def by_token_digest(self, digest: str) -> ConsentEvidence | None:
        stmt = self.select().where(ConsentEvidence.confirmation_digest == digest)
        return self.session.scalars(stmt).one_or_none()

    def confirmation_of(self, pending_id: int) -> ConsentEvidence | None:
        stmt = self.select().where(ConsentEvidence.confirms_id == pending_id).limit(1)
        return self.session.scalars(stmt).first()

    def before(self, customer_id: int, cursor: TimelineKey | None, limit: int) -> list[ConsentEvidence]:
        stmt = (
            self.for_customer(customer_id)
            .where(before_clause(ConsentEvidence.occurred_at, ConsentEvidence.id, "consent", cursor))
            .order_by(ConsentEvidence.occurred_at.desc(), ConsentEvidence.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def strip_pii(self, customer_ids: Sequence[int], at: datetime) -> int:
        """Erasure: drop the network evidence, keep the decision, its wording, source and time."""
        result = self.session.execute(
            update(ConsentEvidence)
            .where(
                ConsentEvidence.workspace_id == self.workspace_id,
                ConsentEvidence.customer_id.in_(list(customer_ids)),
            )
            .values(ip=None, user_agent=None, confirmation_digest=None, pii_erased_at=at)
            .execution_options(synchronize_session="fetch")
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class ConsentStateRepository(WorkspaceRepository[ConsentState]):
    model = ConsentState

    def for_customer(self, customer_id: int) -> list[ConsentState]:
        stmt = (
            self.select()
            .where(ConsentState.customer_id == customer_id)
            .order_by(ConsentState.channel, ConsentState.topic)
        )
        return list(self.session.scalars(stmt))

    def for_customers(self, customer_ids: Sequence[int]) -> list[ConsentState]:
        stmt = self.select().where(ConsentState.customer_id.in_(list(customer_ids)))
        return list(self.session.scalars(stmt))

    def find(self, customer_id: int, channel: str, topic: str, *, for_update: bool = False) -> ConsentState | None:
        stmt = self.select().where(
            ConsentState.customer_id == customer_id, ConsentState.channel == channel, ConsentState.topic == topic
        )
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def clear(self, customer_id: int) -> None:
        self.session.execute(
            delete(ConsentState)
            .where(ConsentState.workspace_id == self.workspace_id, ConsentState.customer_id == customer_id)
            .execution_options(synchronize_session="fetch")
        )

