"""Workspace-level definitions: custom attribute types, consent topics and customer settings (lifecycle).

Services: they write through repositories and never commit.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from patronage.customers.attributes import AttributeSpec, AttributeType, check_definition
from patronage.customers.consent_repository import ConsentTopicRepository
from patronage.customers.consent_schemas import ConsentTopicCreate, ConsentTopicUpdate
from patronage.customers.definition_repository import AttributeDefinitionRepository, SettingsRepository
from patronage.customers.lifecycle_rules import LifecycleDefinitions
from patronage.customers.models import AttributeDefinition, ConsentTopic, CustomerSettings
from patronage.customers.schemas import (
    AttributeDefinitionCreate,
    AttributeDefinitionUpdate,
    CustomerSettingsOut,
    CustomerSettingsUpdate,
)
from patronage.kit.audit import audit
from patronage.kit.errors import Conflict, NotFound, ValidationFailed, field_error


# ---- custom attributes -----------------------------------------------------------------------------
def attribute_specs(session: Session, workspace_id: int) -> dict[str, AttributeSpec]:
    return {
        d.name: AttributeSpec(d.name, AttributeType(d.type), tuple(d.allowed_values), d.required)
        for d in AttributeDefinitionRepository(session, workspace_id).list()
    }


def list_attributes(session: Session, workspace_id: int) -> list[AttributeDefinition]:
    return AttributeDefinitionRepository(session, workspace_id).list()


def get_attribute(session: Session, workspace_id: int, name: str) -> AttributeDefinition:
    definition = AttributeDefinitionRepository(session, workspace_id).by_name(name)
    if definition is None:
        raise NotFound(f"attribute {name!r} is not defined")
    return definition


def create_attribute(
    session: Session, workspace_id: int, data: AttributeDefinitionCreate, *, actor: str
) -> AttributeDefinition:
    repo = AttributeDefinitionRepository(session, workspace_id)
    if repo.by_name(data.name) is not None:
        raise Conflict(f"attribute {data.name!r} is already defined", field="name")
    try:
        allowed = check_definition(data.type, data.allowed_values)
    except ValueError as exc:
        raise field_error("allowed_values", str(exc)) from exc
    definition = repo.new(
        name=data.name, type=data.type.value, allowed_values=allowed, required=data.required,
        description=data.description,
    )
    audit(session, workspace_id=workspace_id, actor=actor, action="customer_attribute.created",
          subject_type="customer_attribute", subject_id=definition.id, data=data.model_dump(mode="json"))
    return definition


def update_attribute(
    session: Session, workspace_id: int, name: str, data: AttributeDefinitionUpdate, *, actor: str
) -> AttributeDefinition:
    """The type is fixed once defined (delete and re-create to change it); values already stored are
    not re-validated, new writes are."""
    definition = get_attribute(session, workspace_id, name)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "allowed_values" in changes:
        try:
            changes["allowed_values"] = check_definition(AttributeType(definition.type), changes["allowed_values"])
        except ValueError as exc:
            raise field_error("allowed_values", str(exc)) from exc
    for key, value in changes.items():
        setattr(definition, key, value)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="customer_attribute.updated",
          subject_type="customer_attribute", subject_id=definition.id, data=changes)
    return definition


def delete_attribute(session: Session, workspace_id: int, name: str, *, actor: str) -> None:
    """Values already stored on profiles stay (and are exported); writing the name again is refused."""
    definition = get_attribute(session, workspace_id, name)
    AttributeDefinitionRepository(session, workspace_id).delete(definition)
    audit(session, workspace_id=workspace_id, actor=actor, action="customer_attribute.deleted",
          subject_type="customer_attribute", subject_id=definition.id, data={"name": name})


# ---- consent topics --------------------------------------------------------------------------------
def list_topics(session: Session, workspace_id: int) -> list[ConsentTopic]:
    return ConsentTopicRepository(session, workspace_id).list()


def create_topic(session: Session, workspace_id: int, data: ConsentTopicCreate, *, actor: str) -> ConsentTopic:
    repo = ConsentTopicRepository(session, workspace_id)
    if repo.by_key(data.key) is not None:
        raise Conflict(f"consent topic {data.key!r} already exists", field="key")
    topic = repo.new(**data.model_dump())
    audit(session, workspace_id=workspace_id, actor=actor, action="consent_topic.created",
          subject_type="consent_topic", subject_id=topic.id, data=data.model_dump())
    return topic


def update_topic(
    session: Session, workspace_id: int, key: str, data: ConsentTopicUpdate, *, actor: str
) -> ConsentTopic:
    topic = ConsentTopicRepository(session, workspace_id).by_key(key)
    if topic is None:
        raise NotFound(f"consent topic {key!r} not found")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changes.items():
        setattr(topic, field, value)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="consent_topic.updated",
          subject_type="consent_topic", subject_id=topic.id, data=changes)
    return topic


# ---- settings --------------------------------------------------------------------------------------
def lifecycle_definitions(row: CustomerSettings | None) -> LifecycleDefinitions:
    return LifecycleDefinitions.model_validate(row.lifecycle if row is not None else {})


def load_settings(session: Session, workspace_id: int) -> tuple[CustomerSettings | None, LifecycleDefinitions]:
    row = SettingsRepository(session, workspace_id).current()
    return row, lifecycle_definitions(row)


def settings_out(row: CustomerSettings | None) -> CustomerSettingsOut:
    return CustomerSettingsOut(
        default_country=row.default_country if row is not None else None,
        lifecycle=lifecycle_definitions(row),
        lifecycle_overrides=dict(row.lifecycle) if row is not None else {},
    )


def get_settings(session: Session, workspace_id: int) -> CustomerSettingsOut:
    return settings_out(SettingsRepository(session, workspace_id).current())


def update_settings(
    session: Session, workspace_id: int, data: CustomerSettingsUpdate, *, actor: str
) -> CustomerSettingsOut:
    repo = SettingsRepository(session, workspace_id)
    row = repo.current()
    overrides: dict[str, Any] = dict(row.lifecycle) if row is not None else {}
    for key, value in (data.lifecycle or {}).items():
        if value is None:
            overrides.pop(key, None)
        else:
            overrides[key] = value
    try:
        checked = LifecycleDefinitions.model_validate(overrides)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(["lifecycle", *(str(p) for p in e["loc"])]),
             "message": "unknown setting" if e["type"] == "extra_forbidden" else e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors) from exc
    # Store only what differs from the defaults, in JSON form, so new defaults reach every workspace.
    stored = checked.model_dump(mode="json", include=set(overrides))
    if row is None:
        row = repo.new(default_country=None, lifecycle=stored)
    else:
        row.lifecycle = stored
    if "default_country" in data.model_fields_set:
        row.default_country = data.default_country
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="customer_settings.updated",
          subject_type="customer_settings", subject_id=row.id, data=data.model_dump(mode="json", exclude_unset=True))
    return settings_out(row)
