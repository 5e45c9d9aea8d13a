"""Every earning query, scoped to one workspace."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Table, bindparam, extract, func, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from patronage.customers.models import Customer
from patronage.earning.models import Backtest, RuleSet, RuleSetVersion, RuleUsage, VersionStatus
from patronage.events.models import BehaviourEvent, Order
from patronage.kit.clock import utcnow
from patronage.kit.pagination import paginate_by_id
from patronage.kit.repository import WorkspaceRepository
from patronage.kit.upsert import insert_ignore

BUDGET_CUSTOMER = 0
USAGE: Table = RuleUsage.__table__  # type: ignore[assignment]
USAGE_KEY = ("workspace_id", "rule_uid", "customer_id", "period_key")  # uq_earning_rule_usage_key


class RuleSetRepository(WorkspaceRepository[RuleSet]):
    model = RuleSet

    def all(self, *, include_archived: bool) -> list[RuleSet]:
        stmt = self.select().order_by(RuleSet.id)
        if not include_archived:
            stmt = stmt.where(RuleSet.archived.is_(False))
        return list(self.session.scalars(stmt))

    def by_name(self, name: str) -> RuleSet | None:
        return self.session.scalars(self.select().where(RuleSet.name == name)).one_or_none()

    def versions(self, rule_set_id: int) -> list[RuleSetVersion]:
        stmt = select(RuleSetVersion).where(
            RuleSetVersion.workspace_id == self.workspace_id, RuleSetVersion.rule_set_id == rule_set_id
        ).order_by(RuleSetVersion.version)
        return list(self.session.scalars(stmt))

    def version(self, rule_set_id: int, version: int, *, for_update: bool = False) -> RuleSetVersion | None:
        stmt = select(RuleSetVersion).where(
            RuleSetVersion.workspace_id == self.workspace_id, RuleSetVersion.rule_set_id == rule_set_id,
            RuleSetVersion.version == version,
        )
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def next_version(self, rule_set_id: int) -> int:
        stmt = select(func.coalesce(func.max(RuleSetVersion.version), 0)).where(
            RuleSetVersion.workspace_id == self.workspace_id, RuleSetVersion.rule_set_id == rule_set_id
        )
        return int(self.session.scalar(stmt) or 0) + 1

    def published(self) -> list[tuple[int, int, str]]:
        """(rule set id, live version, its digest) of every published, unarchived rule set."""
        stmt = (
            select(RuleSet.id, RuleSetVersion.version, RuleSetVersion.digest)
            .join(RuleSetVersion, (RuleSetVersion.rule_set_id == RuleSet.id)
                  & (RuleSetVersion.version == RuleSet.published_version))
            .where(RuleSet.workspace_id == self.workspace_id, RuleSet.archived.is_(False),
                   RuleSetVersion.status == VersionStatus.PUBLISHED)
            .order_by(RuleSet.id)
        )
        return [(rs, v, d) for rs, v, d in self.session.execute(stmt)]

    def add_version(self, version: RuleSetVersion) -> RuleSetVersion:
        self.session.add(version)
        self.session.flush()
        return version


class UsageRepository:
    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def customer_usage(self, customer_id: int, uids: Sequence[str]) -> dict[tuple[str, str], tuple[int, int]]:
        if not uids:
            return {}
        stmt = select(RuleUsage.rule_uid, RuleUsage.period_key, RuleUsage.points, RuleUsage.times).where(
            RuleUsage.workspace_id == self.workspace_id, RuleUsage.customer_id == customer_id,
            RuleUsage.rule_uid.in_(uids),
        )
        return {(uid, key): (points, times) for uid, key, points, times in self.session.execute(stmt)}

    def usage_of(
        self, customer_ids: Sequence[int], uids: Sequence[str]
    ) -> dict[int, dict[tuple[str, str], tuple[int, int]]]:
        """``customer_usage`` for many customers at once (chunked replays start from what was used)."""
        out: dict[int, dict[tuple[str, str], tuple[int, int]]] = {}
        ids = sorted(set(customer_ids))
        if not uids or not ids:
            return out
        for start in range(0, len(ids), 500):
            stmt = select(RuleUsage.customer_id, RuleUsage.rule_uid, RuleUsage.period_key, RuleUsage.points,
                          RuleUsage.times).where(
                RuleUsage.workspace_id == self.workspace_id, RuleUsage.customer_id.in_(ids[start:start + 500]),
                RuleUsage.rule_uid.in_(list(uids)))
            for customer_id, uid, key, points, times in self.session.execute(stmt):
                out.setdefault(customer_id, {})[(uid, key)] = (points, times)
        return out

    def lock_budgets(self, uids: Sequence[str]) -> dict[str, int]:
        """Budget counters of these rules, locked in uid order (after the customer's account)."""
        if not uids:
            return {}
        self._ensure([(uid, BUDGET_CUSTOMER, "budget") for uid in sorted(uids)])
        stmt = (
            select(RuleUsage.rule_uid, RuleUsage.points)
            .where(RuleUsage.workspace_id == self.workspace_id, RuleUsage.customer_id == BUDGET_CUSTOMER,
                   RuleUsage.period_key == "budget", RuleUsage.rule_uid.in_(sorted(uids)))
            .order_by(RuleUsage.rule_uid)
            .with_for_update()
        )
        return {uid: points for uid, points in self.session.execute(stmt)}

    def _ensure(self, keys: Sequence[tuple[str, int, str]]) -> None:
        """Create these (rule uid, customer, period) counters at zero unless they exist (one statement;
        one created concurrently is left as it is)."""
        now = utcnow()
        insert_ignore(self.session, USAGE, [
            {"workspace_id": self.workspace_id, "rule_uid": uid, "customer_id": customer_id, "period_key": period_key,
             "points": 0, "times": 0, "created_at": now, "updated_at": now}
            for uid, customer_id, period_key in keys
        ], conflict=USAGE_KEY)

    def add(self, uid: str, customer_id: int, period_key: str, points: int, times: int) -> None:
        """Relative increment (``points = points + :p``), creating the counter on first use."""
        self._ensure([(uid, customer_id, period_key)])
        self.session.execute(
            update(RuleUsage)
            .where(RuleUsage.workspace_id == self.workspace_id, RuleUsage.rule_uid == uid,
                   RuleUsage.customer_id == customer_id, RuleUsage.period_key == period_key)
            .values(points=RuleUsage.points + points, times=RuleUsage.times + times)
            .execution_options(synchronize_session=False)
        )

    def add_many(self, increments: dict[tuple[str, int, str], tuple[int, int]], *,
                 existing: set[tuple[str, int, str]] | None = None) -> None:
        """``add`` for many counters: existing ones with one relative executemany UPDATE, new ones with
        one multi-row ``INSERT … ON CONFLICT DO NOTHING`` (``add`` for any a concurrent writer created).

        ``existing``: the (rule uid, customer, period) counters known to exist, when the caller has just
        read them (under the customers' account locks); otherwise they are looked up rule by rule."""
        if not increments:
            return
        keys = sorted(increments)
        if existing is None:
            existing = set()
            for uid in sorted({k[0] for k in keys}):
                stmt = select(RuleUsage.customer_id, RuleUsage.period_key).where(
                    RuleUsage.workspace_id == self.workspace_id, RuleUsage.rule_uid == uid)
                existing.update((uid, c, p) for c, p in self.session.execute(stmt))
        new = [k for k in keys if k not in existing]
        old = [k for k in keys if k in existing]
        if old:
            t: Table = RuleUsage.__table__  # type: ignore[assignment]
            self.session.execute(
                update(t).where(t.c.workspace_id == self.workspace_id, t.c.rule_uid == bindparam("k_uid"),
                                t.c.customer_id == bindparam("k_customer"), t.c.period_key == bindparam("k_period"))
                .values(points=t.c.points + bindparam("d_points", type_=Integer()),
                        times=t.c.times + bindparam("d_times", type_=Integer())),
                [{"k_uid": u, "k_customer": c, "k_period": p, "d_points": increments[(u, c, p)][0],
                  "d_times": increments[(u, c, p)][1]} for u, c, p in old],
            )
        if new:
            now = utcnow()
            rows = [{"workspace_id": self.workspace_id, "rule_uid": u, "customer_id": c, "period_key": p,
                     "points": increments[(u, c, p)][0], "times": increments[(u, c, p)][1],
                     "created_at": now, "updated_at": now} for u, c, p in new]
            inserted = insert_ignore(self.session, USAGE, rows, conflict=USAGE_KEY,
                                     returning=("rule_uid", "customer_id", "period_key"))
            created = {(r.rule_uid, r.customer_id, r.period_key) for r in inserted}
            for key in new:
                if key not in created:  # a concurrent writer created it meanwhile: add to it
                    self.add(*key, *increments[key])


class OrderReader:
    """Read-only access to orders for earning (the events domain owns them)."""

    def __init__(self, session: Session, workspace_id: int) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def get(self, order_id: int) -> Order | None:
        """The order with its lines, in one round trip."""
        stmt = select(Order).where(Order.workspace_id == self.workspace_id, Order.id == order_id).options(
            joinedload(Order.lines)
        )
        return self.session.scalars(stmt).unique().one_or_none()

    def is_first(self, order: Order) -> bool:
        """No earlier non-cancelled order of the same customer."""
        stmt = select(Order.id).where(
            Order.workspace_id == self.workspace_id, Order.customer_id == order.customer_id,
            Order.status != "cancelled",
            (Order.placed_at < order.placed_at) | ((Order.placed_at == order.placed_at) & (Order.id < order.id)),
        ).limit(1)
        return self.session.execute(stmt).first() is None

    def count_between(self, start: datetime, end: datetime) -> int:
        stmt = select(func.count()).select_from(Order).where(
            Order.workspace_id == self.workspace_id, Order.placed_at >= start, Order.placed_at < end,
            Order.status != "cancelled",
        )
        return int(self.session.scalar(stmt) or 0)

    def chunk_between(self, start: datetime, end: datetime, after_id: int, limit: int) -> list[Order]:
        stmt = (
            select(Order)
            .where(Order.workspace_id == self.workspace_id, Order.placed_at >= start, Order.placed_at < end,
                   Order.status != "cancelled", Order.id > after_id)
            .order_by(Order.id)
            .limit(limit)
            .options(selectinload(Order.lines))
        )
        return list(self.session.scalars(stmt))


def customers(session: Session, workspace_id: int, ids: Iterable[int]) -> dict[int, Customer]:
    wanted = sorted(set(ids))
    out: dict[int, Customer] = {}
    for start in range(0, len(wanted), 500):
        stmt = select(Customer).where(Customer.workspace_id == workspace_id, Customer.id.in_(wanted[start:start + 500]))
        out.update({c.id: c for c in session.scalars(stmt)})
    return out


def backtest(session: Session, workspace_id: int, backtest_id: int, *, for_update: bool = False) -> Backtest | None:
    stmt = select(Backtest).where(Backtest.workspace_id == workspace_id, Backtest.id == backtest_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def backtests_page(
    session: Session, workspace_id: int, *, cursor: str | None, limit: int
) -> tuple[list[Backtest], str | None]:
    stmt = select(Backtest).where(Backtest.workspace_id == workspace_id)
    return paginate_by_id(session, stmt, Backtest.id, cursor=cursor, limit=limit)


def behaviour_event(session: Session, workspace_id: int, event_id: int) -> BehaviourEvent | None:
    stmt = select(BehaviourEvent).where(BehaviourEvent.workspace_id == workspace_id, BehaviourEvent.id == event_id)
    return session.scalars(stmt).one_or_none()


def same_day(day: date, today: date) -> bool:
    if (day.month, day.day) == (today.month, today.day):
        return True
    leap_day_off_year = (day.month, day.day) == (2, 29) and (today.month, today.day) == (2, 28)
    return leap_day_off_year and not (today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0))


def born_on(session: Session, ws: int, today: date) -> list[int]:
    stmt = select(Customer.id, Customer.birthday).where(
        Customer.workspace_id == ws, Customer.birthday.is_not(None), Customer.merged_into_id.is_(None),
        Customer.erased_at.is_(None), extract("month", Customer.birthday) == today.month,
    ).order_by(Customer.id)
    return [cid for cid, born in session.execute(stmt) if born is not None and same_day(born, today)]


def signed_up_on(session: Session, ws: int, today: date, tz: ZoneInfo) -> list[tuple[int, int]]:
    months = {(today - timedelta(days=1)).month, today.month, (today + timedelta(days=1)).month}
    stmt = select(Customer.id, Customer.signed_up_at).where(
        Customer.workspace_id == ws, Customer.signed_up_at.is_not(None), Customer.merged_into_id.is_(None),
        Customer.erased_at.is_(None), extract("month", Customer.signed_up_at).in_(months),
    ).order_by(Customer.id)
    out = []
    for cid, at in session.execute(stmt):
        local: date = (at if isinstance(at, datetime) else datetime.fromisoformat(str(at))).astimezone(tz).date()
        if local.year < today.year and same_day(local, today):
            out.append((cid, today.year - local.year))
    return out
