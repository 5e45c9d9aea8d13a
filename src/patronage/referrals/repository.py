"""Queries for referrals (workspace-scoped), including the identity signals the fraud checks compare."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from patronage.customers.models import Customer, CustomerIdentity
from patronage.events.models import Order, Return
from patronage.kit.repository import WorkspaceRepository
from patronage.referrals.fraud import Signals
from patronage.referrals.models import Referral, ReferralCode, ReferralProgram


class ProgramRepository(WorkspaceRepository[ReferralProgram]):
    model = ReferralProgram

    def current(self) -> ReferralProgram | None:
        return self.session.scalars(self.select()).one_or_none()


class CodeRepository(WorkspaceRepository[ReferralCode]):
    model = ReferralCode

    def for_customer(self, customer_id: int) -> ReferralCode | None:
        return self.session.scalars(self.select().where(ReferralCode.customer_id == customer_id)).one_or_none()

    def by_code(self, code: str) -> ReferralCode | None:
        return self.session.scalars(self.select().where(ReferralCode.code == code)).one_or_none()

    def code_taken(self, code: str) -> bool:
        """Taken in any workspace: codes are globally unique (see ``find_code``)."""
        return find_code(self.session, code) is not None

    def bump(self, code_id: int, **deltas: int) -> None:
        values = {name: getattr(ReferralCode, name) + delta for name, delta in deltas.items()}
        stmt = (
            update(ReferralCode)
            .where(ReferralCode.workspace_id == self.workspace_id, ReferralCode.id == code_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(stmt)

    def totals(self, customer_id: int | None = None) -> tuple[int, int]:
        stmt = select(func.coalesce(func.sum(ReferralCode.invites_sent), 0),
                      func.coalesce(func.sum(ReferralCode.clicks), 0)).where(
            ReferralCode.workspace_id == self.workspace_id)
        if customer_id is not None:
            stmt = stmt.where(ReferralCode.customer_id == customer_id)
        invites, clicks = self.session.execute(stmt).one()
        return int(invites), int(clicks)


class ReferralRepository(WorkspaceRepository[Referral]):
    model = Referral

    def for_referred(self, referred_id: int, *, for_update: bool = False) -> Referral | None:
        stmt = self.select().where(Referral.referred_id == referred_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def waiting_for_order(self, referred_ids: Sequence[int]) -> list[Referral]:
        """Referrals of these referred customers still waiting for a first qualifying order."""
        ids = sorted(set(referred_ids))
        found: list[Referral] = []
        for start in range(0, len(ids), 500):
            stmt = self.select().where(Referral.referred_id.in_(ids[start:start + 500]),
                                       Referral.order_id.is_(None), Referral.status.in_(("pending", "held")))
            found.extend(self.session.scalars(stmt))
        return found

    def for_order(self, order_id: int) -> Referral | None:
        return self.session.scalars(self.select().where(Referral.order_id == order_id)).first()

    def made_since(self, referrer_id: int, since: datetime) -> int:
        stmt = select(func.count()).where(
            Referral.workspace_id == self.workspace_id, Referral.referrer_id == referrer_id,
            Referral.created_at >= since,
        )
        return int(self.session.scalar(stmt) or 0)

    def listing(self, *, status: str | None = None, referrer_id: int | None = None) -> Any:
        stmt = self.select()
        if status is not None:
            stmt = stmt.where(Referral.status == status)
        if referrer_id is not None:
            stmt = stmt.where(Referral.referrer_id == referrer_id)
        return stmt

    def repoint_referrer(self, from_customer_id: int, to_customer_id: int) -> None:
        self.session.execute(
            update(Referral)
            .where(Referral.workspace_id == self.workspace_id, Referral.referrer_id == from_customer_id)
            .values(referrer_id=to_customer_id)
            .execution_options(synchronize_session=False)
        )

    def scrub(self, referred_id: int) -> None:
        """Erasure: the IP, device and address recorded at the customer's signup go."""
        self.session.execute(
            update(Referral)
            .where(Referral.workspace_id == self.workspace_id, Referral.referred_id == referred_id)
            .values(signals={})
            .execution_options(synchronize_session=False)
        )

    def stats(self, referrer_id: int | None = None) -> dict[str, int]:
        def count_if(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        stmt = select(
            func.count(),
            count_if(Referral.order_id.is_not(None)),
            count_if(Referral.status == "rewarded"),
            count_if(Referral.status == "held"),
            count_if(Referral.status == "rejected"),
            count_if(Referral.status == "cancelled"),
        ).where(Referral.workspace_id == self.workspace_id)
        if referrer_id is not None:
            stmt = stmt.where(Referral.referrer_id == referrer_id)
        total, converted, rewarded, held, rejected, cancelled = self.session.execute(stmt).one()
        return {"signed_up": int(total), "converted": int(converted), "rewarded": int(rewarded),
                "held": int(held), "rejected": int(rejected), "cancelled": int(cancelled)}


def find_code(session: Session, code: str) -> ReferralCode | None:
    """The one query not scoped by workspace, on purpose: the public link ``/r/{code}`` names no workspace,
    so the code itself identifies it (codes are unique across workspaces)."""
    return session.scalars(select(ReferralCode).where(ReferralCode.code == code)).one_or_none()


def survivor_of(session: Session, workspace_id: int, customer_id: int) -> int:
    """A merged-away customer's survivor (followed to the end), else the customer itself."""
    seen = 0
    while seen < 20:
        found = customer(session, workspace_id, customer_id)
        if found is None or found.merged_into_id is None:
            return customer_id
        customer_id, seen = found.merged_into_id, seen + 1
    return customer_id


def customer(session: Session, workspace_id: int, customer_id: int) -> Customer | None:
    stmt = select(Customer).where(Customer.workspace_id == workspace_id, Customer.id == customer_id)
    return session.scalars(stmt).one_or_none()


def signals_of(
    session: Session, workspace_id: int, customer_id: int, *, extra: dict[str, Any] | None = None
) -> Signals:
    """A customer's identities: profile email/phone/address, every identity row, and recorded devices/IPs
    (their referral code's, and those seen when they were referred themself)."""
    person = customer(session, workspace_id, customer_id)
    rows = session.execute(
        select(CustomerIdentity.kind, CustomerIdentity.value).where(
            CustomerIdentity.workspace_id == workspace_id, CustomerIdentity.customer_id == customer_id)
    ).all()
    code = CodeRepository(session, workspace_id).for_customer(customer_id)
    own = ReferralRepository(session, workspace_id).for_referred(customer_id)
    seen: list[dict[str, Any]] = [code.signals if code else {}, own.signals if own else {}, extra or {}]
    attributes = (person.attributes or {}) if person else {}
    by_kind: dict[str, list[str]] = {}
    for kind, value in rows:
        by_kind.setdefault(kind, []).append(value)
    return Signals.of(
        emails=[person.email if person else None, *by_kind.get("email", []), *(s.get("email") for s in seen)],
        phones=[person.phone if person else None, *by_kind.get("phone", []), *(s.get("phone") for s in seen)],
        addresses=[_text(attributes.get("address")), *(s.get("address") for s in seen)],
        devices=[*by_kind.get("device_id", []), *(d for s in seen for d in _list(s, "device_id", "devices"))],
        ips=[ip for s in seen for ip in _list(s, "ip", "ips")],
    )


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        return " ".join(str(v) for v in value.values() if v)
    return str(value) if value else None


def _list(signals: dict[str, Any], one: str, many: str) -> list[str]:
    values = [signals.get(one), *(signals.get(many) or [])]
    return [str(v) for v in values if v]


def had_orders_before(session: Session, workspace_id: int, customer_id: int, before: datetime) -> bool:
    stmt = select(Order.id).where(
        Order.workspace_id == workspace_id, Order.customer_id == customer_id, Order.placed_at < before
    ).limit(1)
    return session.scalar(stmt) is not None


def order(session: Session, workspace_id: int, order_id: int) -> Order | None:
    stmt = select(Order).where(Order.workspace_id == workspace_id, Order.id == order_id)
    return session.scalars(stmt).one_or_none()


def returned_amount(session: Session, workspace_id: int, order_id: int) -> Decimal:
    stmt = select(func.coalesce(func.sum(Return.amount), 0)).where(
        Return.workspace_id == workspace_id, Return.order_id == order_id, Return.status == "applied"
    )
    return Decimal(str(session.scalar(stmt) or 0))
