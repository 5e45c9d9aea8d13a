"""What the engine knows about an occurrence (an order, a signup, a review...), its customer and the
workspace: plain immutable values, built by the service from the database or by tests by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from patronage.earning.amounts import ZERO, Line, net_paid


@dataclass(frozen=True)
class OrderFacts:
    id: str
    total: Decimal
    subtotal: Decimal
    lines: tuple[Line, ...] = ()
    discount_total: Decimal = ZERO
    currency: str = "USD"
    channel: str | None = None
    store: str | None = None
    first: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def net_lines(self) -> dict[str, Decimal]:
        """Net paid per earning line (computed once per order; callers must not modify it)."""
        cached: dict[str, Decimal] | None = self.__dict__.get("_net")
        if cached is None:
            cached = net_paid(self.lines, self.discount_total, self.subtotal)
            self.__dict__["_net"] = cached
        return cached


@dataclass(frozen=True)
class CustomerFacts:
    id: int
    tier: str | None = None
    segments: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    orders_count: int = 0
    country: str | None = None
    signed_up_at: datetime | None = None


@dataclass(frozen=True)
class Occurrence:
    """Something that may earn points: ``trigger`` is "order", "signup", "birthday", or an event type."""

    trigger: str
    at: datetime
    order: OrderFacts | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Workspace and customer state the rules depend on.

    ``usage``: points and times already awarded per (rule uid, period key) to this customer;
    ``budget_used``: points awarded per rule uid to everyone (total budgets).
    """

    timezone: str = "UTC"
    tier_multiplier: Decimal = Decimal(1)
    usage: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    budget_used: Mapping[str, int] = field(default_factory=dict)
