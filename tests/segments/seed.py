"""Seeded operational data for segment tests, with a Python mirror to compute ground truths."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.analytics.models import CustomerScores
from patronage.customers.models import ConsentEvidence, ConsentState, Customer, CustomerTag
from patronage.events.models import BehaviourEvent, Order, OrderLine
from patronage.ledger.models import PointAccount
from patronage.tiers.models import Tier, TierMembership

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Person:
    id: int
    country: str | None
    channel: str | None
    tags: set[str]
    vip: bool | None
    score: float | None
    orders: list[tuple[datetime, float, str, list[tuple[str, str]]]] = field(default_factory=list)
    events: list[tuple[str, datetime]] = field(default_factory=list)
    email_consent: str | None = None
    points: int | None = None
    tier: str | None = None
    rfm_segment: str | None = None
    p_alive: float | None = None

    def valid_orders(self, within_days: int | None = None) -> list[tuple[datetime, float, str, list[Any]]]:
        return [o for o in self.orders if o[2] != "cancelled"
                and (within_days is None or o[0] >= NOW - timedelta(days=within_days))]

    @property
    def last_order_at(self) -> datetime | None:
        valid = self.valid_orders()
        return max(o[0] for o in valid) if valid else None


def seed(session: Session, workspace_id: int, n: int = 60, seed_value: int = 11) -> list[Person]:
    rng = random.Random(seed_value)
    gold = Tier(workspace_id=workspace_id, name="Gold", threshold=Decimal(500))
    silver = Tier(workspace_id=workspace_id, name="Silver", threshold=Decimal(100))
    session.add_all([gold, silver])
    session.flush()
    people = []
    for i in range(n):
        person = Person(
            id=0, country=rng.choice(["PT", "ES", "FR", None]), channel=rng.choice(["web", "store", None]),
            tags={t for t in ("vip", "newsletter", "wholesale") if rng.random() < 0.3},
            vip=rng.choice([True, False, None]), score=rng.choice([None, 1.5, 3.0, 7.25]),
        )
        customer = Customer(
            workspace_id=workspace_id, external_id=f"c{i}", email=f"c{i}@example.com", country=person.country,
            acquisition_channel=person.channel, tags=sorted(person.tags),
            attributes={k: v for k, v in (("vip", person.vip), ("score", person.score)) if v is not None},
        )
        session.add(customer)
        session.flush()
        person.id = customer.id
        for tag in person.tags:
            session.add(CustomerTag(workspace_id=workspace_id, customer_id=customer.id, tag=tag))
        for j in range(rng.choice([0, 0, 1, 2, 3, 5])):
            placed = NOW - timedelta(days=rng.randint(0, 400), hours=rng.randint(0, 23))
            total = float(rng.choice([10, 25.5, 60, 120]))
            status = "cancelled" if rng.random() < 0.1 else "paid"
            lines = [(rng.choice(["SKU-A", "SKU-B", "SKU-C"]), rng.choice(["shoes", "bags"]))]
            person.orders.append((placed, total, status, lines))
            order = Order(
                workspace_id=workspace_id, external_id=f"o{i}-{j}", customer_id=customer.id, currency="EUR",
                subtotal=Decimal(str(total)), total=Decimal(str(total)), status=status, placed_at=placed,
            )
            session.add(order)
            session.flush()
            for position, (sku, category) in enumerate(lines):
                session.add(OrderLine(workspace_id=workspace_id, order_id=order.id, position=position, sku=sku,
                                      category=category, quantity=1, unit_price=Decimal(str(total))))
        valid = person.valid_orders()
        customer.orders_count = len(valid)
        customer.total_spent = Decimal(str(sum(o[1] for o in valid)))
        customer.last_order_at = person.last_order_at
        for _ in range(rng.choice([0, 1, 4])):
            at = NOW - timedelta(days=rng.randint(0, 60))
            kind = rng.choice(["page_view", "app_open"])
            person.events.append((kind, at))
            session.add(BehaviourEvent(workspace_id=workspace_id, external_id=f"e{i}-{len(person.events)}",
                                       customer_id=customer.id, type=kind, occurred_at=at))
        if rng.random() < 0.6:
            status = rng.choice(["granted", "withdrawn", "pending"])
            person.email_consent = status
            evidence = ConsentEvidence(workspace_id=workspace_id, customer_id=customer.id, channel="email",
                                       topic="", status=status, source="test", occurred_at=NOW, actor="test")
            session.add(evidence)
            session.flush()
            session.add(ConsentState(workspace_id=workspace_id, customer_id=customer.id, channel="email",
                                     topic="", status=status, evidence_id=evidence.id, occurred_at=NOW))
        if rng.random() < 0.5:
            person.points = rng.choice([0, 50, 300])
            session.add(PointAccount(workspace_id=workspace_id, customer_id=customer.id, available=person.points))
            if rng.random() < 0.6:
                tier = rng.choice([gold, silver])
                person.tier = tier.name
                session.add(TierMembership(workspace_id=workspace_id, customer_id=customer.id, tier_id=tier.id,
                                           earned_tier_id=tier.id, entered_at=NOW, earned_at=NOW))
        if valid:
            person.rfm_segment = rng.choice(["Champions", "Lost"])
            person.p_alive = rng.choice([0.1, 0.5, 0.9])
            session.add(CustomerScores(customer_id=customer.id, workspace_id=workspace_id,
                                       rfm_segment=person.rfm_segment, p_alive=person.p_alive, updated_at=NOW))
        people.append(person)
    session.flush()
    return people
