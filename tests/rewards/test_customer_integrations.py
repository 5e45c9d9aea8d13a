"""The loyalty engine in the customers domain's lifecycle: timeline, GDPR export and erasure, merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from patronage.customers.gdpr import erase_customer, export_customer
from patronage.customers.merge import merge_customers
from patronage.customers.timeline import customer_timeline
from patronage.kit import clock
from patronage.kit.db import Database
from patronage.referrals import service as referrals
from patronage.rewards import service as rewards
from patronage.rewards.rules import RewardKind
from patronage.rewards.schemas import RewardCreate
from patronage.tiers import qualification
from patronage.tiers import service as tiers
from patronage.tiers.models import TierMembership
from patronage.tiers.schemas import TierCreate
from tests.conftest import Tenant
from tests.rewards.helpers import give_points, new_customer


def test_timeline_export_erase_and_merge(db: Database, tenant: Tenant) -> None:
    clock.freeze(datetime(2025, 6, 1, 12, tzinfo=UTC))
    ws = tenant.workspace_id
    ann = new_customer(db, ws, email="ann@example.com")
    dup = new_customer(db, ws, email="ann.other@example.com")
    give_points(db, ws, ann, 500, "seed")
    with db.unit_of_work() as session:
        tiers.create_tier(session, ws, TierCreate(name="Base", threshold=Decimal(0)), actor="t")
        gold = tiers.create_tier(session, ws, TierCreate(name="Gold", threshold=Decimal(100)), actor="t")
        qualification.override(session, ws, ann, tier_id=gold.id, until=clock.utcnow() + timedelta(days=5),
                               reason="vip", actor="t")
        mug = rewards.create_reward(session, ws, RewardCreate(name="Mug", kind=RewardKind.FREE_PRODUCT, sku="MUG",
                                                              points_cost=300), actor="t")
        rewards.redeem(session, ws, ann, mug.id, request_id="r", actor="t", details={"address": "Main St 1"})
        referrals.ensure_code(session, ws, ann, ip="10.0.0.1")
        referrals.ensure_code(session, ws, dup, ip="10.0.0.2")
        qualification.credit_order(session, ws, order_id=1, customer_id=dup, total=Decimal(150),
                                   placed_at=clock.utcnow())

    with db.unit_of_work() as session:
        kinds = {item.kind for item in customer_timeline(session, ws, ann, limit=50)[0]}
        assert {"tier", "reward", "points"} <= kinds
        document = export_customer(session, ws, ann)
        assert document["tiers"]["membership"]["tier_id"] == gold.id
        assert document["rewards"]["fulfilments"][0]["details"] == {"address": "Main St 1"}
        assert document["referrals"]["code"]["signals"] == {"ips": ["10.0.0.1"]}

    # The duplicate (with its own code and 150 of tier credit) merges into Ann.
    with db.unit_of_work() as session:
        merge_customers(session, ws, ann, dup, actor="t")
    with db.unit_of_work() as session:
        assert referrals.code_of(session, ws, dup) is not None  # Ann keeps hers; the duplicate's still resolves
        membership = session.scalars(select(TierMembership).where(TierMembership.workspace_id == ws,
                                                                  TierMembership.customer_id == ann)).one()
        assert membership.earned_tier_id == gold.id  # the combined credit (150) earned Gold outright
        erase_customer(session, ws, ann, actor="t")
    with db.unit_of_work() as session:
        document = export_customer(session, ws, ann)
        assert document["rewards"]["fulfilments"][0]["details"] == {}
        assert document["referrals"]["code"]["signals"] == {}
