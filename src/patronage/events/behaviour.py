"""Behavioural events (idempotent by the client's external id) and workspace-defined event types.

Properties are validated against the type's JSON Schema (built-in or the workspace's); a 422 names the
property. Each new event records ``event.recorded`` (with ``type``). Never commits.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaViolation
from sqlalchemy.orm import Session

from patronage.events.behaviour_schemas import EventIn, EventTypeIn, EventTypeOut
from patronage.events.catalog import BUILTIN_TYPES
from patronage.events.customer_link import find_customer, resolve_customer
from patronage.events.models import BehaviourEvent, EventType
from patronage.events.repository import BehaviourEventRepository, EventTypeRepository
from patronage.events.schemas import Outcome, content_hash
from patronage.kit.audit import audit
from patronage.kit.errors import Conflict, NotFound, ValidationFailed, field_error
from patronage.kit.jobs import record_event

MAX_SCHEMA_BYTES = 64 * 1024
_FORMATS = FormatChecker()


class EventConflict(Conflict):
    code = "event_conflict"
    title = "An event with this external_id was recorded with other content"


class Validators:
    """Compiled property validators by type name, for one unit of work (a request or an import chunk)."""

    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self._cache: dict[str, Draft202012Validator] = {}

    def preload(self, names: list[str]) -> None:
        wanted = [n for n in dict.fromkeys(names) if n not in self._cache and n not in BUILTIN_TYPES]
        for name, event_type in EventTypeRepository(self.session, self.workspace_id).by_names(wanted).items():
            self._cache[name] = Draft202012Validator(event_type.properties_schema, format_checker=_FORMATS)

    def get(self, name: str) -> Draft202012Validator:
        validator = self._cache.get(name)
        if validator is not None:
            return validator
        builtin = BUILTIN_TYPES.get(name)
        if builtin is not None:
            schema = builtin.schema
        else:
            event_type = EventTypeRepository(self.session, self.workspace_id).by_name(name)
            if event_type is None:
                raise field_error(
                    "type", f"unknown event type {name!r}; define it with PUT /event-types/{name}",
                    code="unknown_type",
                )
            schema = event_type.properties_schema
        validator = Draft202012Validator(schema, format_checker=_FORMATS)
        self._cache[name] = validator
        return validator

    def check(self, name: str, properties: dict[str, Any]) -> None:
        errors = sorted(self.get(name).iter_errors(properties), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            items = [_describe(e) for e in errors[:20]]
            summary = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5])
            raise ValidationFailed(summary, errors=items)


def _describe(error: SchemaViolation) -> dict[str, str]:
    path = ["properties", *(str(p) for p in error.absolute_path)]
    message = error.message
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required" and isinstance(error.validator_value, list):
        missing = [k for k in error.validator_value if k not in instance]
        if missing:
            path.append(str(missing[0]))
            message = "is required"
    elif error.validator == "additionalProperties":
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed]
        if extra:
            path.append(str(extra[0]))
            message = "is not a declared property of this event type"
    return {"field": ".".join(path), "message": message, "type": f"schema.{error.validator}"}


def record_behaviour_event(
    session: Session, workspace_id: int, data: EventIn, *, actor: str, source: str = "api",
    validators: Validators | None = None,
) -> tuple[Outcome, BehaviourEvent]:
    """Record the event once; the same event again is ``unchanged``, other content under its id is 409."""
    digest = content_hash(data)
    repo = BehaviourEventRepository(session, workspace_id)
    existing = repo.by_external_id(data.external_id)
    if existing is not None:
        if existing.content_hash == digest or _same(session, workspace_id, existing, data):
            return "unchanged", existing
        raise EventConflict(f"event {data.external_id!r} was already recorded with other content; events never change")
    if not data.customer_external_id and not data.customer_email:
        raise field_error("customer_external_id", "send customer_external_id or customer_email", code="missing")
    (validators or Validators(session, workspace_id)).check(data.type, data.properties)
    customer_id = resolve_customer(
        session, workspace_id, external_id=data.customer_external_id, email=data.customer_email, actor=actor
    )
    event = repo.new(
        external_id=data.external_id, customer_id=customer_id, type=data.type, occurred_at=data.occurred_at,
        properties=data.properties, source=source, content_hash=digest,
    )
    record_event(session, workspace_id, "event.recorded", recorded_payload(event))
    return "created", event


def _same(session: Session, workspace_id: int, event: BehaviourEvent, data: EventIn) -> bool:
    """The same fact sent in another form (key order, number formatting)."""
    if (event.type, event.occurred_at, event.properties) != (data.type, data.occurred_at, data.properties):
        return False
    sent = find_customer(session, workspace_id, external_id=data.customer_external_id, email=data.customer_email)
    return sent == event.customer_id


def recorded_payload(event: BehaviourEvent) -> dict[str, Any]:
    # Properties stay out: the event log is append-only and they may hold personal data (GDPR erase).
    return {
        "event_id": event.id, "external_id": event.external_id, "customer_id": event.customer_id,
        "type": event.type, "builtin": event.type in BUILTIN_TYPES, "occurred_at": event.occurred_at.isoformat(),
        "source": event.source,
    }


def get_event(session: Session, workspace_id: int, external_id: str) -> BehaviourEvent:
    event = BehaviourEventRepository(session, workspace_id).by_external_id(external_id)
    if event is None:
        raise NotFound(f"event {external_id!r} not found")
    return event


# ---- event types -------------------------------------------------------------------------------------
def _builtin_out(name: str) -> EventTypeOut:
    b = BUILTIN_TYPES[name]
    return EventTypeOut(name=b.name, description=b.description, properties_schema=b.schema, builtin=True)


def _custom_out(t: EventType) -> EventTypeOut:
    return EventTypeOut(name=t.name, description=t.description, properties_schema=t.properties_schema,
                        builtin=False, created_at=t.created_at, updated_at=t.updated_at)


def list_event_types(session: Session, workspace_id: int) -> list[EventTypeOut]:
    custom = [_custom_out(t) for t in EventTypeRepository(session, workspace_id).all()]
    return [*(_builtin_out(n) for n in sorted(BUILTIN_TYPES)), *custom]


def get_event_type(session: Session, workspace_id: int, name: str) -> EventTypeOut:
    if name in BUILTIN_TYPES:
        return _builtin_out(name)
    found = EventTypeRepository(session, workspace_id).by_name(name)
    if found is None:
        raise NotFound(f"event type {name!r} not found")
    return _custom_out(found)


def check_schema(schema: dict[str, Any]) -> None:
    import json

    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise field_error("properties_schema", f"at most {MAX_SCHEMA_BYTES // 1024} KiB")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(["properties_schema", *(str(p) for p in exc.absolute_path)])
        raise field_error(where, f"not a valid JSON Schema: {exc.message}", code="invalid_schema") from exc
    if schema.get("type") != "object":
        raise field_error("properties_schema.type", 'must be "object": properties are a JSON object')


def put_event_type(
    session: Session, workspace_id: int, name: str, data: EventTypeIn, *, actor: str
) -> tuple[Outcome, EventTypeOut]:
    from patronage.events.behaviour_schemas import TYPE_NAME

    if not TYPE_NAME.fullmatch(name):
        raise field_error("name", "lower-case letters, digits, '_' and '.', starting with a letter (at most 100)")
    if name in BUILTIN_TYPES:
        raise field_error("name", f"{name!r} is a built-in type; choose another name", code="builtin")
    check_schema(data.properties_schema)
    repo = EventTypeRepository(session, workspace_id)
    found = repo.by_name(name)
    if found is None:
        created = repo.new(name=name, description=data.description, properties_schema=data.properties_schema)
        audit(session, workspace_id=workspace_id, actor=actor, action="event_type.created",
              subject_type="event_type", subject_id=created.id, data={"name": name})
        return "created", _custom_out(created)
    if found.description == data.description and found.properties_schema == data.properties_schema:
        return "unchanged", _custom_out(found)
    found.description, found.properties_schema = data.description, data.properties_schema
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="event_type.updated",
          subject_type="event_type", subject_id=found.id, data={"name": name})
    return "updated", _custom_out(found)


def delete_event_type(session: Session, workspace_id: int, name: str, *, actor: str) -> None:
    """Recorded events of the type stay; new ones are refused until the type is defined again."""
    if name in BUILTIN_TYPES:
        raise field_error("name", f"{name!r} is a built-in type and cannot be deleted", code="builtin")
    found = EventTypeRepository(session, workspace_id).by_name(name)
    if found is None:
        raise NotFound(f"event type {name!r} not found")
    session.delete(found)
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="event_type.deleted",
          subject_type="event_type", subject_id=found.id, data={"name": name})
