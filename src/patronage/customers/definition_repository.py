"""Queries for a workspace's custom attribute definitions and its customer settings."""

from __future__ import annotations

from patronage.customers.models import AttributeDefinition, CustomerSettings
from patronage.kit.repository import WorkspaceRepository


class AttributeDefinitionRepository(WorkspaceRepository[AttributeDefinition]):
    model = AttributeDefinition

    def list(self) -> list[AttributeDefinition]:
        return list(self.session.scalars(self.select().order_by(AttributeDefinition.name)))

    def by_name(self, name: str) -> AttributeDefinition | None:
        return self.session.scalars(self.select().where(AttributeDefinition.name == name)).one_or_none()

    def delete(self, definition: AttributeDefinition) -> None:
        self.session.delete(definition)
        self.session.flush()


class SettingsRepository(WorkspaceRepository[CustomerSettings]):
    model = CustomerSettings

    def current(self) -> CustomerSettings | None:
        return self.session.scalars(self.select()).one_or_none()
