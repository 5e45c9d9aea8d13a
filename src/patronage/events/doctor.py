"""``patronage doctor`` check for orders: each order and order line lives in its parent's workspace.

``orders.workspace_id`` and ``order_lines.workspace_id`` carry no foreign key to ``workspaces`` (each
would cost an integrity-check query per row written, on imports as much as the row itself); the tenant
comes with the parent row, whose key cascades. This check proves the writers kept them equal.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from patronage.customers.models import Customer
from patronage.events.models import Order, OrderLine
from patronage.kit.doctor import Check, Finding

SHOW = 5


def check_order_tenancy(session: Session) -> list[Finding]:
    orders = session.execute(
        select(Order.id, Order.workspace_id, Customer.workspace_id.label("parent"))
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.workspace_id != Customer.workspace_id).limit(100)
    ).all()
    lines = session.execute(
        select(OrderLine.id, OrderLine.workspace_id, Order.workspace_id.label("parent"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.workspace_id != Order.workspace_id).limit(100)
    ).all()
    findings = []
    for what, parent, bad in (("order", "customer", orders), ("order line", "order", lines)):
        if bad:
            sample = ", ".join(f"{what} {r.id} in ws {r.workspace_id}, its {parent} in ws {r.parent}"
                               for r in bad[:SHOW])
            more = "+" if len(bad) >= 100 else ""
            findings.append(Finding("events.tenancy", "error",
                                    f"{len(bad)}{more} {what}(s) outside their {parent}'s workspace: {sample}"))
    return findings or [Finding("events.tenancy", "ok", "every order and line is in its parent's workspace")]


CHECKS: Sequence[Check] = (check_order_tenancy,)
