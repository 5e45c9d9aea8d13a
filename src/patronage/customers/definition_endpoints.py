"""HTTP routes for workspace definitions: custom attributes, consent topics, customer settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy.orm import Session

from patronage.customers import definitions
from patronage.customers.consent_schemas import ConsentTopicCreate, ConsentTopicOut, ConsentTopicUpdate
from patronage.customers.models import AttributeDefinition, ConsentTopic
from patronage.customers.schemas import (
    AttributeDefinitionCreate,
    AttributeDefinitionOut,
    AttributeDefinitionUpdate,
    CustomerSettingsOut,
    CustomerSettingsUpdate,
)
from patronage.kit.http.route import UnitOfWorkRoute, request_session
from patronage.workspaces.auth import Principal, require
from patronage.workspaces.permissions import Permission

router = APIRouter(route_class=UnitOfWorkRoute)
DbSession = Annotated[Session, Depends(request_session)]
Reader = Annotated[Principal, Depends(require(Permission.CUSTOMERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.CUSTOMERS_WRITE))]
Manager = Annotated[Principal, Depends(require(Permission.WORKSPACE_MANAGE))]


# ---- custom attributes -----------------------------------------------------------------------------
@router.get("/customer-attributes", response_model=list[AttributeDefinitionOut], tags=["customer attributes"])
def list_attributes(session: DbSession, principal: Reader) -> list[AttributeDefinition]:
    return definitions.list_attributes(session, principal.workspace_id)


@router.post(
    "/customer-attributes", response_model=AttributeDefinitionOut, status_code=status.HTTP_201_CREATED,
    tags=["customer attributes"],
)
def create_attribute(body: AttributeDefinitionCreate, session: DbSession, principal: Writer) -> AttributeDefinition:
    return definitions.create_attribute(session, principal.workspace_id, body, actor=principal.actor)


@router.get("/customer-attributes/{name}", response_model=AttributeDefinitionOut, tags=["customer attributes"])
def get_attribute(name: str, session: DbSession, principal: Reader) -> AttributeDefinition:
    return definitions.get_attribute(session, principal.workspace_id, name)


@router.patch("/customer-attributes/{name}", response_model=AttributeDefinitionOut, tags=["customer attributes"])
def update_attribute(
    name: str, body: AttributeDefinitionUpdate, session: DbSession, principal: Writer
) -> AttributeDefinition:
    return definitions.update_attribute(session, principal.workspace_id, name, body, actor=principal.actor)


@router.delete(
    "/customer-attributes/{name}", status_code=status.HTTP_204_NO_CONTENT, tags=["customer attributes"]
)
def delete_attribute(name: str, session: DbSession, principal: Writer) -> Response:
    definitions.delete_attribute(session, principal.workspace_id, name, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- consent topics --------------------------------------------------------------------------------
@router.get("/consent-topics", response_model=list[ConsentTopicOut], tags=["consent"])
def list_topics(session: DbSession, principal: Reader) -> list[ConsentTopic]:
    return definitions.list_topics(session, principal.workspace_id)


@router.post(
    "/consent-topics", response_model=ConsentTopicOut, status_code=status.HTTP_201_CREATED, tags=["consent"]
)
def create_topic(body: ConsentTopicCreate, session: DbSession, principal: Writer) -> ConsentTopic:
    return definitions.create_topic(session, principal.workspace_id, body, actor=principal.actor)


@router.patch("/consent-topics/{key}", response_model=ConsentTopicOut, tags=["consent"])
def update_topic(key: str, body: ConsentTopicUpdate, session: DbSession, principal: Writer) -> ConsentTopic:
    return definitions.update_topic(session, principal.workspace_id, key, body, actor=principal.actor)


# ---- settings (lifecycle definitions, default phone region) ----------------------------------------
@router.get("/customer-settings", response_model=CustomerSettingsOut, tags=["customer settings"])
def get_settings(session: DbSession, principal: Reader) -> CustomerSettingsOut:
    return definitions.get_settings(session, principal.workspace_id)


@router.patch("/customer-settings", response_model=CustomerSettingsOut, tags=["customer settings"])
def update_settings(body: CustomerSettingsUpdate, session: DbSession, principal: Manager) -> CustomerSettingsOut:
    return definitions.update_settings(session, principal.workspace_id, body, actor=principal.actor)
