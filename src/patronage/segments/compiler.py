"""Condition tree -> SQLAlchemy Core WHERE clause over ``customers`` (pure: builds SQL, runs none)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from patronage.customers.models import Customer
from patronage.segments import conditions, fields
from patronage.segments.conditions import Leaf, Node


def validate(tree: Any, *, root: str = "definition") -> Node:
    """Parse and check a definition; raises a 422 naming each bad path."""
    return conditions.validate(tree, fields.resolve_info, root=root)


def compile_node(node: Node, ctx: fields.Context) -> ColumnElement[bool]:
    if isinstance(node, Leaf):
        spec = fields.resolve(node.field)
        assert not isinstance(spec, str), spec  # validated before
        return spec.compile(node, ctx)
    children = [compile_node(child, ctx) for child in node.children]
    if node.op == "and":
        return and_(*children)
    if node.op == "or":
        return or_(*children)
    return not_(children[0])


def eligible(workspace_id: int) -> ColumnElement[bool]:
    """Profiles a segment can contain: the workspace's, not merged away, not erased."""
    return and_(
        Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None), Customer.erased_at.is_(None)
    )


def matching_ids(node: Node, workspace_id: int, now: datetime) -> Select[int]:
    """SELECT customers.id of every eligible customer the tree matches."""
    ctx = fields.Context(workspace_id, now)
    return select(Customer.id).where(eligible(workspace_id), compile_node(node, ctx))
