"""The customer profile, the identifiers that resolve to it, its tags, custom attribute definitions,
consent evidence and state, lifecycle settings and stage history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.kit.clock import utcnow
from patronage.kit.models import WorkspaceScoped
from patronage.kit.types import BigId, JSONType, Money, UTCDateTime


class Customer(WorkspaceScoped):
    """One person as the business knows them. ``external_id`` is the shop's own id."""

    __tablename__ = "customers"
    __table_args__ = (
        Index(
            "uq_customers_ws_external_id",
            "workspace_id",
            "external_id",
            unique=True,
            sqlite_where=text("external_id IS NOT NULL"),
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index("ix_customers_ws_email", "workspace_id", "email"),
        Index("ix_customers_ws_stage", "workspace_id", "lifecycle_stage"),
        # Every order updates its customer's aggregates (orders_count, total_spent, last_order_at,
        # updated_at): no index on a column that changes with each order, so that update touches no
        # index at all (PostgreSQL: a HOT update, with the free space fillfactor leaves in each page)
        # instead of inserting into all six. Measured on a 1M-order import: the aggregates' UPDATE per
        # chunk 340 -> 130 ms. Reads by recency or by updated_at (segments, the analytics extract) scan
        # the workspace's customers instead, a table far smaller than its orders.
        {"postgresql_with": {"fillfactor": 90}},
    )

    external_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))  # normalised: validated, trimmed, lower-case
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    birthday: Mapped[date | None]
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    acquisition_source: Mapped[str | None] = mapped_column(String(100))
    acquisition_channel: Mapped[str | None] = mapped_column(String(50))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)  # mirrored in customer_tags for filters
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # typed per workspace
    signed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Aggregates maintained on ingestion (derivable from orders; kept for segments and lifecycle).
    orders_count: Mapped[int] = mapped_column(default=0)
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.0000"))
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifecycle_stage: Mapped[str] = mapped_column(String(20), default="prospect")

    # A profile merged into another keeps its row (for audit and identity resolution), pointing on.
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id", ondelete="SET NULL"))
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CustomerIdentity(WorkspaceScoped):
    """Any identifier that resolves to a customer: emails, phones, external ids, device ids."""

    __tablename__ = "customer_identities"
    __table_args__ = (Index("uq_customer_identities_ws_kind_value", "workspace_id", "kind", "value", unique=True),)

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # email | phone | external_id | device_id
    value: Mapped[str] = mapped_column(String(320))


class CustomerTag(WorkspaceScoped):
    """One row per (customer, tag): the indexable mirror of ``Customer.tags`` used by list filters."""

    __tablename__ = "customer_tags"
    __table_args__ = (
        Index("uq_customer_tags_customer_tag", "customer_id", "tag", unique=True),
        Index("ix_customer_tags_ws_tag", "workspace_id", "tag"),
    )

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))


class AttributeDefinition(WorkspaceScoped):
    """The declared type of one custom attribute: string | number | boolean | date | enum."""

    __tablename__ = "customer_attribute_definitions"
    __table_args__ = (Index("uq_customer_attribute_definitions_ws_name", "workspace_id", "name", unique=True),)

    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    allowed_values: Mapped[list[str]] = mapped_column(JSONType, default=list)  # enum only
    required: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str] = mapped_column(String(500), default="")


class ConsentTopic(WorkspaceScoped):
    """A workspace-defined subject a customer can opt in to (newsletter interests, product news...)."""

    __tablename__ = "consent_topics"
    __table_args__ = (Index("uq_consent_topics_ws_key", "workspace_id", "key", unique=True),)

    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")


class ConsentEvidence(WorkspaceScoped):
    """One consent decision, append-only. Never updated except to strip personal data on erasure."""

    __tablename__ = "consent_evidence"
    __table_args__ = (
        Index("ix_consent_evidence_ws_customer", "workspace_id", "customer_id", "id"),
        Index("uq_consent_evidence_token", "confirmation_digest", unique=True),
    )

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(64), default="")  # "" = the channel as a whole
    status: Mapped[str] = mapped_column(String(16))  # granted | withdrawn | pending
    source: Mapped[str] = mapped_column(String(100))  # checkout, signup_form, import, double_opt_in, ...
    text: Mapped[str | None] = mapped_column(Text)  # the wording the customer agreed to
    text_version: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the customer decided
    actor: Mapped[str] = mapped_column(String(120))  # who recorded it (api_key:3, user:1, system)
    # Double opt-in: digest of the confirmation token of a pending decision, and when it expires.
    confirmation_digest: Mapped[str | None] = mapped_column(String(64))
    confirmation_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirms_id: Mapped[int | None] = mapped_column(BigId)  # the pending decision this one confirms
    pii_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsentState(WorkspaceScoped):
    """The current decision per (customer, channel, topic): a cache of the latest evidence row."""

    __tablename__ = "consent_states"
    __table_args__ = (
        Index("uq_consent_states_customer_channel_topic", "customer_id", "channel", "topic", unique=True),
        Index("ix_consent_states_ws_channel", "workspace_id", "channel", "topic", "status"),
    )

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16))
    evidence_id: Mapped[int] = mapped_column(BigId, ForeignKey("consent_evidence.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerSettings(WorkspaceScoped):
    """Per-workspace customer settings: the default phone region and the lifecycle definitions.

    A workspace without a row uses the defaults in ``lifecycle_rules.LifecycleDefinitions``.
    """

    __tablename__ = "customer_settings"
    __table_args__ = (Index("uq_customer_settings_ws", "workspace_id", unique=True),)

    default_country: Mapped[str | None] = mapped_column(String(2))
    lifecycle: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # overrides of the defaults


class StageHistory(WorkspaceScoped):
    """One row per stay in a lifecycle stage: entered, and exited when the next stage starts."""

    __tablename__ = "customer_stage_history"
    __table_args__ = (Index("ix_customer_stage_history_ws_customer", "workspace_id", "customer_id", "entered_at"),)

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(20))
    previous_stage: Mapped[str | None] = mapped_column(String(20))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # the numbers behind the decision
