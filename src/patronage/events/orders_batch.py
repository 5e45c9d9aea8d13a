"""Many ``POST /orders`` in one transaction, set-based where they are plain (group commit's batch write).

``write_batch`` is the ``GroupCommitter``'s writer for order requests (``OrderWrite``). Per workspace, in
the order the requests arrived, it takes the longest run of *plain* new orders and writes them with a
constant number of statements: one look-up (``arrival_repository.arrivals``), the unknown customers'
profiles in bulk (``ensure_customers``), one multi-row INSERT for the orders and one for their lines, the
aggregates (``record_orders_totals``), the held returns, and one ``record_events_bulk`` for the events.
The first order that is not plain (a re-send, an order named twice in the batch, an email, a merged
profile, a failing money rule) goes through the single-order service on the same session, and the
run after it is looked up again, so every order sees what the orders before it wrote, exactly as if
the requests had come one after the other.

Each order gets the events the single path records for it, in the same order (``customer.created`` of
its new profile before its ``order.recorded``, then ``order.status_changed`` if it arrives cancelled);
profiles created for the run are announced before the run's orders. Never commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patronage.customers.service import ensure_customers, record_orders_totals
from patronage.events import returns as returns_service
from patronage.events import rules
from patronage.events.arrival_repository import Arrivals, arrivals
from patronage.events.group_commit import ItemFailed, Work
from patronage.events.models import Order
from patronage.events.orders import catalogue_skus, line_values, recorded_payload, status_payload, upsert_order
from patronage.events.repository import OrderRepository
from patronage.events.schemas import OrderIn, Outcome, content_hash
from patronage.kit.jobs.queue import record_events_bulk


@dataclass(frozen=True)
class OrderWrite:
    """One order request for the committer; called alone, it is today's single path."""

    workspace_id: int
    data: OrderIn
    actor: str
    render: Callable[[Outcome, Order], Any]  # the answer, built before the commit

    def __call__(self, session: Session) -> Any:
        outcome, order = upsert_order(session, self.workspace_id, self.data, actor=self.actor)
        return self.render(outcome, order)


@dataclass
class _Plain:
    index: int  # in the committer's batch
    write: OrderWrite
    totals: rules.Totals
    currency: str
    customer_id: int | None  # None: a new profile, created for the run
    catalogue: dict[str, tuple[str, str | None]]  # from the run's look-up


def write_batch(session: Session, items: Sequence[Work]) -> list[Any]:
    """The results of ``items``, in order; an item that fails raises ``ItemFailed`` with its index."""
    results: list[Any] = [None] * len(items)
    run: list[tuple[int, OrderWrite]] = []
    for index, item in enumerate([*items, None]):
        if isinstance(item, OrderWrite):
            run.append((index, item))
            continue
        by_workspace: dict[int, list[tuple[int, OrderWrite]]] = {}
        for entry in run:  # workspaces never see each other's rows: each is written on its own
            by_workspace.setdefault(entry[1].workspace_id, []).append(entry)
        for workspace_id, entries in by_workspace.items():
            _write_workspace(session, workspace_id, entries, results)
        run = []
        if item is not None:  # other work (none on the API today) runs in its turn
            results[index] = _single(session, index, item)
    return results


def _single(session: Session, index: int, item: Work) -> Any:
    try:
        return item(session)
    except Exception as exc:
        raise ItemFailed(index) from exc


def _write_workspace(
    session: Session, workspace_id: int, pending: list[tuple[int, OrderWrite]], results: list[Any]
) -> None:
    while pending:
        plain = _plain_run(session, workspace_id, pending)
        if plain:
            _write_plain(session, workspace_id, plain, results)
        pending = pending[len(plain):]
        if pending:  # not plain: the single-order service, seeing everything written before it
            index, write = pending[0]
            results[index] = _single(session, index, write)
            pending = pending[1:]


def _plain_run(session: Session, workspace_id: int, pending: list[tuple[int, OrderWrite]]) -> list[_Plain]:
    """The longest run at the head of ``pending`` of new orders for a known or an unknown customer named by
    external id alone (one look-up)."""
    found: Arrivals = arrivals(
        session, workspace_id, order_external_ids=[w.data.external_id for _, w in pending],
        customer_external_ids=[w.data.customer_external_id for _, w in pending if w.data.customer_external_id],
        want_currency=any(w.data.currency is None for _, w in pending),
        skus=[sku for _, w in pending for sku in catalogue_skus(w.data)],
    )
    run: list[_Plain] = []
    orders: set[str] = set(found.orders)
    for index, write in pending:
        data = write.data
        external_id = data.customer_external_id
        currency = data.currency or found.currency
        if data.external_id in orders or data.customer_email is not None or not external_id or currency is None:
            break
        identity = found.identities.get(external_id)
        if identity is not None and identity[1] is not None:
            break  # a merged profile: its survivor is looked up by the single path
        if identity is None and (external_id in found.columns or not _valid_external_id(external_id)):
            break
        try:
            totals = rules.check_order(data)
        except Exception:
            break  # the single path answers with the error
        orders.add(data.external_id)
        customer_id = None if identity is None else identity[0]
        run.append(_Plain(index, write, totals, currency, customer_id, found.catalogue))
    return run


def _valid_external_id(external_id: str) -> bool:
    return len(external_id) <= 200 and external_id == external_id.strip()


def _write_plain(session: Session, workspace_id: int, run: list[_Plain], results: list[Any]) -> None:
    # Sorted: concurrent batches (other committer threads, other processes) take the new profiles'
    # unique keys in one order, so they wait for each other instead of deadlocking.
    new_ids = sorted({p.write.data.customer_external_id or "" for p in run if p.customer_id is None})
    created = ensure_customers(session, workspace_id, new_ids) if new_ids else {}
    values: list[dict[str, Any]] = []
    lines: list[list[dict[str, Any]]] = []
    for p in run:
        data = p.write.data
        customer_id = p.customer_id if p.customer_id is not None else created[data.customer_external_id or ""]
        p.customer_id = customer_id
        values.append({
            "workspace_id": workspace_id, "external_id": data.external_id, "customer_id": customer_id,
            "currency": p.currency, "subtotal": p.totals.subtotal, "discount_total": data.discount_total,
            "shipping_total": data.shipping_total, "tax_total": data.tax_total, "other_total": data.other_total,
            "taxes_included": data.taxes_included, "total": p.totals.total, "refunded_total": Decimal(0),
            "channel": data.channel, "store": data.store, "status": data.status, "placed_at": data.placed_at,
            "attributes": data.attributes, "source": "api", "content_hash": content_hash(data),
        })
        lines.append(line_values(session, workspace_id, data, p.catalogue))
    repo = OrderRepository(session, workspace_id)
    inserted = repo.insert_new_many(values, lines)
    orders = [repo.attach_new(v, new, order_lines) for v, new, order_lines in zip(values, inserted, lines, strict=True)]
    record_orders_totals(session, workspace_id, [
        (o.customer_id, o.placed_at, o.total, 1) for o in orders if o.status != "cancelled"])
    events: list[tuple[str, dict[str, Any]]] = []
    for order in orders:
        events.append(("order.recorded", recorded_payload(order)))
        if order.status == "cancelled":
            events.append(("order.status_changed", status_payload(order, None, None)))
    record_events_bulk(session, workspace_id, events)
    returns_service.apply_held(session, workspace_id, orders)  # one look-up; applies any that wait
    for p, order in zip(run, orders, strict=True):
        results[p.index] = p.write.render("created", order)
