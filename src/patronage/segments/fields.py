"""The fields a segment condition can test, and how each compiles to SQLAlchemy Core.

Every expression is correlated to ``customers`` (the ORM table) and portable to SQLite and PostgreSQL:
aggregates are scalar subqueries with COALESCE, time windows are bound parameters computed from
``now`` (no dialect date arithmetic), JSON attributes use SQLAlchemy's JSON accessors. Fields backed by a
domain that is not installed resolve to a clear "unknown field" error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, and_, cast, exists, false, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from patronage.analytics.models import CustomerScores
from patronage.customers.models import ConsentState, Customer, CustomerTag
from patronage.events.models import BehaviourEvent, Order, OrderLine
from patronage.segments.conditions import FieldInfo, Leaf, Param, Type
from patronage.segments.models import SegmentMembership

Expr = ColumnElement[bool]


@dataclass(frozen=True)
class Context:
    workspace_id: int
    now: datetime


@dataclass(frozen=True)
class FieldSpec:
    info: FieldInfo
    compile: Callable[[Leaf, Context], Expr]
    requires: str | None = None  # a module that must be importable (the owning domain)


# ---- generic comparisons ------------------------------------------------------------------------------
def compare(column: Any, leaf: Leaf, ctx: Context, value_type: str, nullable: bool = True) -> Expr:
    """``column <op> value`` in two-valued logic: a NULL never matches, except ``is_not_set``."""
    op, v = leaf.op, leaf.value
    if op == "is_set":
        return column.is_not(None)  # type: ignore[no-any-return]
    if op == "is_not_set":
        return column.is_(None)  # type: ignore[no-any-return]
    if op == "is_true":
        return and_(column.is_not(None), column == true())
    if op == "is_false":
        return and_(column.is_not(None), column == false())
    expr: Expr
    if op == "within_last_days":
        expr = column >= ctx.now - timedelta(days=v)
    elif op == "not_within_last_days":
        expr = column < ctx.now - timedelta(days=v)
    else:
        builders: dict[str, Callable[[], Expr]] = {
            "eq": lambda: column == v, "ne": lambda: column != v, "gt": lambda: column > v,
            "gte": lambda: column >= v, "lt": lambda: column < v, "lte": lambda: column <= v,
            "before": lambda: column < v, "after": lambda: column > v,
            "between": lambda: column.between(v[0], v[1]),
            "in": lambda: column.in_(v), "not_in": lambda: column.not_in(v),
            "contains": lambda: func.lower(column).contains(str(v).lower(), autoescape=True),
            "starts_with": lambda: func.lower(column).startswith(str(v).lower(), autoescape=True),
        }
        expr = builders[op]()
    return and_(column.is_not(None), expr) if nullable else expr


def _column(name: str, value_type: str, nullable: bool = True, description: str = "") -> FieldSpec:
    column = getattr(Customer, name)
    return FieldSpec(
        FieldInfo(name, value_type, description=description),
        lambda leaf, ctx: compare(column, leaf, ctx, value_type, nullable),
    )


def _list_condition(leaf: Leaf, has: Callable[[list[str]], Expr]) -> Expr:
    """any_of: has one of the values; all_of: has each; none_of: has none."""
    values = list(leaf.value)
    if leaf.op == "any_of":
        return has(values)
    if leaf.op == "none_of":
        return not_(has(values))
    return and_(*(has([v]) for v in values))


def _window(column: Any, leaf: Leaf, ctx: Context) -> list[Expr]:
    days = leaf.params.get("within_days")
    return [] if days is None else [column >= ctx.now - timedelta(days=days)]


# ---- profile, custom attributes, consent ---------------------------------------------------------------
def _attribute(name: str) -> FieldSpec:
    key = name.split(".", 1)[1]

    def compile_(leaf: Leaf, ctx: Context) -> Expr:
        element = Customer.attributes[key]
        value_type = leaf.value_type or Type.STRING
        if value_type == Type.NUMBER:
            column: Any = element.as_float()
        elif value_type == Type.BOOLEAN:
            column = element.as_boolean()
        else:
            column = element.as_string()
        if value_type == Type.DATETIME:
            # ISO 8601 strings in UTC compare chronologically as text.
            leaf = Leaf(leaf.path, leaf.field, leaf.op, _iso(leaf.value), leaf.params, leaf.value_type)
            ctx = Context(ctx.workspace_id, ctx.now)
        return compare(column, leaf, ctx, value_type)

    return FieldSpec(FieldInfo(name, "any", description="custom attribute"), compile_)


def _iso(value: Any) -> Any:
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


def _tags(leaf: Leaf, ctx: Context) -> Expr:
    def has(values: list[str]) -> Expr:
        return exists().where(
            CustomerTag.workspace_id == ctx.workspace_id, CustomerTag.customer_id == Customer.id,
            CustomerTag.tag.in_(values),
        )

    return _list_condition(leaf, has)


def _consent(name: str) -> FieldSpec:
    parts = name.split(".")
    channel, topic = parts[1], (parts[2] if len(parts) > 2 else "")

    def state(topic_key: str, statuses: list[str]) -> Expr:
        return exists().where(
            ConsentState.workspace_id == Customer.workspace_id, ConsentState.customer_id == Customer.id,
            ConsentState.channel == channel, ConsentState.topic == topic_key, ConsentState.status.in_(statuses),
        )

    def compile_(leaf: Leaf, ctx: Context) -> Expr:
        # Mirrors customers.consent_rules.can_message.
        allowed = state(topic, ["granted"])
        if topic:
            allowed = and_(allowed, not_(state("", ["withdrawn", "pending"])))
        return allowed if leaf.op == "is_true" else not_(allowed)

    return FieldSpec(FieldInfo(name, Type.BOOLEAN, description="may we message them on this channel"), compile_)


# ---- loyalty: tier, points ------------------------------------------------------------------------------
def _tier(leaf: Leaf, ctx: Context) -> Expr:
    from patronage.tiers.models import Tier, TierMembership

    name = (
        select(Tier.name)
        .join(TierMembership, TierMembership.tier_id == Tier.id)
        .where(TierMembership.workspace_id == ctx.workspace_id, TierMembership.customer_id == Customer.id)
        .limit(1)
        .scalar_subquery()
    )
    return compare(name, leaf, ctx, Type.STRING)


def _points(attr: str) -> Callable[[Leaf, Context], Expr]:
    def compile_(leaf: Leaf, ctx: Context) -> Expr:
        from patronage.ledger.models import PointAccount

        value = (
            select(func.coalesce(func.sum(getattr(PointAccount, attr)), 0))
            .where(PointAccount.workspace_id == ctx.workspace_id, PointAccount.customer_id == Customer.id)
            .scalar_subquery()
        )
        return compare(value, leaf, ctx, Type.NUMBER, nullable=False)

    return compile_


# ---- scores (RFM, predictions) ---------------------------------------------------------------------------
def _score(attr: str, value_type: str) -> FieldSpec:
    def compile_(leaf: Leaf, ctx: Context) -> Expr:
        value = (
            select(getattr(CustomerScores, attr))
            .where(CustomerScores.customer_id == Customer.id)
            .scalar_subquery()
        )
        return compare(value, leaf, ctx, value_type)

    return FieldSpec(FieldInfo(attr, value_type, description="from the nightly RFM/CLV refresh"), compile_)


# ---- behaviour ---------------------------------------------------------------------------------------------
_VALID_ORDER = Order.status != "cancelled"
WINDOW = Param("within_days", required=True, kind="days")
OPTIONAL_WINDOW = Param("within_days", required=False, kind="days")


def _orders_in_window(leaf: Leaf, ctx: Context) -> Expr:
    count = (
        select(func.count(Order.id))
        .where(Order.workspace_id == ctx.workspace_id, Order.customer_id == Customer.id, _VALID_ORDER,
               *_window(Order.placed_at, leaf, ctx))
        .scalar_subquery()
    )
    return compare(count, leaf, ctx, Type.NUMBER, nullable=False)


def _spend_in_window(leaf: Leaf, ctx: Context) -> Expr:
    total = (
        select(func.coalesce(func.sum(cast(Order.total - Order.refunded_total, Float)), 0.0))
        .where(Order.workspace_id == ctx.workspace_id, Order.customer_id == Customer.id, _VALID_ORDER,
               *_window(Order.placed_at, leaf, ctx))
        .scalar_subquery()
    )
    return compare(total, leaf, ctx, Type.NUMBER, nullable=False)


def _days_since_last_order(leaf: Leaf, ctx: Context) -> Expr:
    """Days since the last order, compared through timestamps: ``days >= n`` iff ``last <= now - n days``.

    Whole days: a customer who ordered 36 hours ago has 1 day since their last order.
    """
    last, op, v = Customer.last_order_at, leaf.op, leaf.value
    if op in ("is_set", "is_not_set"):
        return compare(last, leaf, ctx, Type.DATETIME)

    def at_least(n: float) -> Expr:  # floor((now - last) / 1 day) >= n
        return last <= ctx.now - timedelta(days=n)

    def at_most(n: float) -> Expr:  # floor(...) <= n  iff  (now - last) < n + 1 days
        return last > ctx.now - timedelta(days=int(n) + 1)

    import math

    exprs: dict[str, Callable[[], Expr]] = {
        "gte": lambda: at_least(math.ceil(v)), "gt": lambda: at_least(math.floor(v) + 1),
        "lte": lambda: at_most(math.floor(v)), "lt": lambda: at_most(math.ceil(v) - 1),
        "eq": lambda: and_(at_least(v), at_most(v)) if float(v).is_integer() else false(),
        "ne": lambda: not_(and_(at_least(v), at_most(v))) if float(v).is_integer() else true(),
        "between": lambda: and_(at_least(math.ceil(v[0])), at_most(math.floor(v[1]))),
        "in": lambda: or_(*(and_(at_least(n), at_most(n)) for n in v if float(n).is_integer())),
        "not_in": lambda: not_(or_(*(and_(at_least(n), at_most(n)) for n in v if float(n).is_integer()))),
    }
    return and_(last.is_not(None), exprs[op]())


def _bought(attr: str) -> Callable[[Leaf, Context], Expr]:
    def compile_(leaf: Leaf, ctx: Context) -> Expr:
        def has(values: list[str]) -> Expr:
            return exists().where(
                OrderLine.workspace_id == ctx.workspace_id, OrderLine.order_id == Order.id,
                Order.customer_id == Customer.id, _VALID_ORDER, getattr(OrderLine, attr).in_(values),
                *_window(Order.placed_at, leaf, ctx),
            )

        return _list_condition(leaf, has)

    return compile_


def _event_count(leaf: Leaf, ctx: Context) -> Expr:
    count = (
        select(func.count(BehaviourEvent.id))
        .where(BehaviourEvent.workspace_id == ctx.workspace_id, BehaviourEvent.customer_id == Customer.id,
               BehaviourEvent.type == leaf.params["event_type"], *_window(BehaviourEvent.occurred_at, leaf, ctx))
        .scalar_subquery()
    )
    return compare(count, leaf, ctx, Type.NUMBER, nullable=False)


def _in_segment(leaf: Leaf, ctx: Context) -> Expr:
    ids = [int(v) if str(v).isdigit() else -1 for v in leaf.value]

    def has(values: list[Any]) -> Expr:
        return exists().where(
            SegmentMembership.customer_id == Customer.id, SegmentMembership.segment_id.in_(values)
        )

    return _list_condition(Leaf(leaf.path, leaf.field, leaf.op, ids, leaf.params), has)


def _spec(name: str, value_type: str, fn: Callable[[Leaf, Context], Expr], *params: Param,
          requires: str | None = None, description: str = "") -> FieldSpec:
    return FieldSpec(FieldInfo(name, value_type, tuple(params), description), fn, requires)


FIELDS: dict[str, FieldSpec] = {
    s.info.name: s
    for s in (
        *(_column(n, Type.STRING) for n in (
            "external_id", "email", "phone", "first_name", "last_name", "country", "locale", "timezone",
            "acquisition_source", "acquisition_channel")),
        _column("lifecycle_stage", Type.STRING, nullable=False),
        _column("orders_count", Type.NUMBER, nullable=False),
        _column("total_spent", Type.NUMBER, nullable=False),
        *(_column(n, Type.DATETIME) for n in ("first_order_at", "last_order_at", "signed_up_at")),
        _column("created_at", Type.DATETIME, nullable=False),
        _spec("tags", Type.LIST, _tags, description="profile tags"),
        _spec("tier", Type.STRING, _tier, requires="patronage.tiers.models", description="current tier name"),
        _spec("points_balance", Type.NUMBER, _points("available"), requires="patronage.ledger.models",
              description="available points"),
        _spec("lifetime_points", Type.NUMBER, _points("lifetime_earned"), requires="patronage.ledger.models"),
        _score("rfm_r", Type.NUMBER), _score("rfm_f", Type.NUMBER), _score("rfm_m", Type.NUMBER),
        _score("rfm_segment", Type.STRING), _score("p_alive", Type.NUMBER), _score("expected_clv", Type.NUMBER),
        _score("expected_purchases_90d", Type.NUMBER), _score("churn_risk", Type.NUMBER),
        _spec("orders_in_window", Type.NUMBER, _orders_in_window, WINDOW,
              description="orders placed in the last within_days days"),
        _spec("spend_in_window", Type.NUMBER, _spend_in_window, WINDOW,
              description="net spend (total - refunds) in the last within_days days"),
        _spec("days_since_last_order", Type.NUMBER, _days_since_last_order,
              description="whole days since the last order; never-ordered customers match nothing"),
        _spec("products_bought", Type.LIST, _bought("sku"), OPTIONAL_WINDOW, description="SKUs bought"),
        _spec("categories_bought", Type.LIST, _bought("category"), OPTIONAL_WINDOW,
              description="product categories bought"),
        _spec("event_count", Type.NUMBER, _event_count, Param("event_type", True, "string"), OPTIONAL_WINDOW,
              description="behavioural events of event_type (in the last within_days days)"),
        _spec("segments", Type.LIST, _in_segment, description="member of segments (ids)"),
    )
}
CONSENT_CHANNELS = ("email", "sms", "push", "whatsapp", "webhook", "in_app", "phone", "post")


def _available(spec: FieldSpec) -> bool:
    if spec.requires is None:
        return True
    try:
        importlib.import_module(spec.requires)
    except ModuleNotFoundError:
        return False
    return True


def resolve(name: str) -> FieldSpec | str:  # noqa: PLR0911
    """The field's spec, or why it is unknown."""
    if name.startswith("attributes."):
        key = name.split(".", 1)[1]
        if not key or len(key) > 64:
            return f"unknown field {name!r}: give a custom attribute name after 'attributes.'"
        return _attribute(name)
    if name.startswith("consent."):
        parts = name.split(".")
        if len(parts) not in (2, 3) or parts[1] not in CONSENT_CHANNELS or (len(parts) == 3 and not parts[2]):
            return f"unknown field {name!r}: use consent.<channel> or consent.<channel>.<topic>"
        return _consent(name)
    spec = FIELDS.get(name)
    if spec is None:
        return f"unknown field {name!r}"
    if not _available(spec):
        return f"unknown field {name!r}: its domain ({spec.requires}) is not installed"
    return spec


def resolve_info(name: str) -> FieldInfo | str:
    spec = resolve(name)
    return spec if isinstance(spec, str) else spec.info


def catalog() -> list[dict[str, Any]]:
    """The fields an editor offers, with their operators and parameters."""
    from patronage.segments.conditions import OPS

    out = []
    for spec in FIELDS.values():
        if not _available(spec):
            continue
        info = spec.info
        out.append({
            "field": info.name, "type": info.type, "ops": list(OPS.get(info.type, ())),
            "params": [{"name": p.name, "required": p.required, "kind": p.kind} for p in info.params],
            "description": info.description,
        })
    out.append({"field": "attributes.<name>", "type": "number|string|boolean|datetime", "ops": [],
                "params": [{"name": "type", "required": False, "kind": "string"}],
                "description": "custom attribute; type inferred from the value unless given"})
    out.append({"field": "consent.<channel>[.<topic>]", "type": Type.BOOLEAN, "ops": ["is_true", "is_false"],
                "params": [], "description": "may we message them (customers.consent_rules.can_message)"})
    return out
