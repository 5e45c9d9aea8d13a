"""Demo data: the real CDNOW purchase log (69,659 purchases by 23,570 customers, 1997-01 to 1998-06).

The file ships inside the installed ``lifetimes`` distribution; it is read in place (never copied, and
``lifetimes`` is never imported). Dates are shifted so the last purchase was yesterday in the
workspace's time zone; each purchase becomes a one-line order ("n CDs for $x"). Profiles get clearly
fake names and ``@example.com`` emails from a seeded Faker. Loading twice changes nothing.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from sqlalchemy import Table
from sqlalchemy.orm import Session

from patronage.customers import lifecycle
from patronage.customers.identity_repository import IdentityRepository
from patronage.customers.models import Customer
from patronage.customers.resolution import find_customer_ids
from patronage.customers.service import record_customers_imported
from patronage.events.importer.orders_bulk import BulkContext, ingest_orders
from patronage.events.importer.prepare import PreparedOrder, from_values
from patronage.events.importer.runner import refresh_statistics
from patronage.events.repository import OrderRepository
from patronage.kit.clock import utcnow
from patronage.kit.db import Database
from patronage.kit.garbage import few_collections
from patronage.kit.upsert import insert_with_ids
from patronage.workspaces.repository import get_workspace

CDNOW_PATH = "lifetimes/datasets/CDNOW_master.txt"
PREFIX = "cdnow-"
CHUNK = 10_000
# The demo's batch events: its points are posted in one replay by ``patronage.earning.demo.load``.
DEMO_BATCH: dict[str, Any] = {"source": "demo", "earn": False}
_CENTS = Decimal("0.0001")
_ZERO = Decimal(0)
NAME_POOL = 400  # distinct fake first and last names drawn from Faker


@dataclass(frozen=True)
class Purchase:
    customer: str  # the file's zero-padded customer id, e.g. "00001"
    seq: int  # 1-based purchase number of this customer, in file order
    day: date
    cds: int
    dollars: Decimal


def cdnow_file() -> Path:
    """Where the installed ``lifetimes`` keeps the CDNOW master file."""
    try:
        located = distribution("lifetimes").locate_file(CDNOW_PATH)
    except PackageNotFoundError as exc:
        raise FileNotFoundError("the lifetimes package is not installed; pip install lifetimes") from exc
    path = Path(str(located))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the lifetimes installation")
    return path


def read_purchases(path: Path, limit: int | None = None) -> Iterator[Purchase]:
    """The purchases in file order; ``limit`` stops after that many."""
    seqs: dict[str, int] = {}
    count = 0
    with path.open(encoding="ascii") as handle:
        for raw in handle:
            parts = raw.split()
            if len(parts) != 4 or not parts[0].isdigit():
                continue  # the header
            if limit is not None and count >= limit:
                return
            customer, day, cds, dollars = parts
            seqs[customer] = seqs.get(customer, 0) + 1
            count += 1
            yield Purchase(customer, seqs[customer], date(int(day[:4]), int(day[4:6]), int(day[6:])), int(cds),
                           Decimal(dollars))


class _Clock:
    """Purchase days to UTC instants: a seeded time of day in the workspace's zone (DST-correct)."""

    def __init__(self, shift: timedelta, tz: ZoneInfo) -> None:
        self.shift, self.tz = shift, tz
        self.rnd = random.Random(1998)  # noqa: S311 - demo times of day, not secrets  # nosec B311
        self.midnights: dict[date, datetime] = {}

    def at(self, day: date) -> datetime:
        midnight = self.midnights.get(day)
        if midnight is None:
            midnight = self.midnights[day] = datetime.combine(day + self.shift, datetime.min.time(), self.tz)
        return (midnight + timedelta(minutes=540 + int(self.rnd.random() * 780))).astimezone(UTC)


def _order(p: Purchase, clock: _Clock) -> PreparedOrder:
    cds = max(p.cds, 1)
    unit = (p.dollars / cds).quantize(_CENTS, rounding=ROUND_HALF_UP)
    return from_values({
        "external_id": f"{PREFIX}{p.customer}-{p.seq}", "customer_external_id": f"{PREFIX}{p.customer}",
        "customer_email": None, "placed_at": clock.at(p.day), "currency": "USD", "channel": "web", "store": None,
        "status": "delivered", "lines": [_line(cds, unit)], "subtotal": None, "discount_total": _ZERO,
        "shipping_total": _ZERO, "tax_total": _ZERO, "other_total": _ZERO, "taxes_included": False,
        "total": p.dollars, "attributes": {},
    })


def _line(cds: int, unit: Decimal) -> dict[str, Any]:
    return {"line_id": None, "sku": "CD", "name": "Compact disc", "category": "Music", "quantity": cds,
            "unit_price": unit, "discount": _ZERO, "is_reward": False}


def _profiles(session: Session, workspace_id: int, first_seen: dict[str, datetime]) -> tuple[int, dict[str, int]]:
    """Create the demo customers with fake names and emails, set-based; returns how many were new and
    every demo customer's id by external id (so the orders need no look-up).

    A private stand-in for a bulk profile upsert in the customers domain (``ensure_customers`` creates
    bare profiles only): the same rows ``ensure_customers`` writes, plus names and an email identity.
    """
    from faker import Faker

    keys = [f"{PREFIX}{c}" for c in first_seen]
    known = find_customer_ids(session, workspace_id, [("external_id", k) for k in keys])
    ids_of = {key: customer_id for (_, key), customer_id in known.items()}
    new = [c for c in first_seen if ("external_id", f"{PREFIX}{c}") not in known]
    if not new:
        return 0, ids_of
    fake = Faker("en_US")
    fake.seed_instance(19970101)
    firsts = [fake.first_name() for _ in range(NAME_POOL)]
    lasts = [fake.last_name() for _ in range(NAME_POOL)]
    pick = random.Random(19970101)  # noqa: S311 - fake names, not secrets  # nosec B311
    now = utcnow()
    rows: list[tuple[Any, ...]] = []
    identities: list[tuple[str, str]] = []
    for customer in new:
        first, last = pick.choice(firsts), pick.choice(lasts)
        email = f"{_slug(first)}.{_slug(last)}.{customer}@example.com"
        rows.append((workspace_id, f"{PREFIX}{customer}", email, first, last, first_seen[customer],
                     "demo:cdnow", "web", [], {}, 0, Decimal(0), "prospect", now, now))
        identities.append((f"{PREFIX}{customer}", email))
    table: Table = Customer.__table__  # type: ignore[assignment]
    ids = insert_with_ids(session, table, (
        "workspace_id", "external_id", "email", "first_name", "last_name", "signed_up_at", "acquisition_source",
        "acquisition_channel", "tags", "attributes", "orders_count", "total_spent", "lifecycle_stage",
        "created_at", "updated_at"), rows)
    IdentityRepository(session, workspace_id).insert_many(
        [(cid, kind, value) for cid, (ext, email) in zip(ids, identities, strict=True)
         for kind, value in (("external_id", ext), ("email", email))]
    )
    lifecycle.start_history(session, workspace_id, ids, None)
    record_customers_imported(session, workspace_id, ids, DEMO_BATCH)
    ids_of.update((ext, cid) for cid, (ext, _) in zip(ids, identities, strict=True))
    return len(ids), ids_of


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower()) or "x"


@few_collections
def load_cdnow(db: Database, workspace_id: int, console: Console, *, limit: int | None = None) -> dict[str, Any]:
    """Load the CDNOW purchases as customers and orders (``limit``: the first n purchases only)."""
    started = time.perf_counter()
    path = cdnow_file()
    with db.unit_of_work() as session:
        if OrderRepository(session, workspace_id).fingerprints([f"{PREFIX}00001-1"]):
            console.print("CDNOW demo data already loaded; skipped")
            return {"skipped": True, "orders": 0, "customers": 0, "seconds": time.perf_counter() - started}
        workspace = get_workspace(session, workspace_id)
        assert workspace is not None
        tz = ZoneInfo(workspace.timezone)
    last_day = max(p.day for p in read_purchases(path, limit))
    yesterday = (utcnow().astimezone(tz) - timedelta(days=1)).date()
    shift = yesterday - last_day
    first_seen: dict[str, datetime] = {}
    for p in read_purchases(path, limit):
        if p.customer not in first_seen:
            first_seen[p.customer] = datetime.combine(p.day + shift, datetime.min.time(), tz).astimezone(UTC)
    clock = _Clock(shift, tz)
    with db.unit_of_work() as session:
        customers, ids_of = _profiles(session, workspace_id, first_seen)
    ctx = BulkContext(workspace_id, "USD", actor="demo", source="demo", earn=bool(DEMO_BATCH["earn"]))
    ctx.remember(ids_of)
    created = 0
    batch: list[PreparedOrder] = []
    with console.status("loading the CDNOW purchase log"):
        refresh_statistics(db)
        for p in read_purchases(path, limit):
            batch.append(_order(p, clock))
            if len(batch) >= CHUNK:
                created += _flush(db, ctx, batch)
                batch = []
                if created == CHUNK:
                    refresh_statistics(db)
        if batch:
            created += _flush(db, ctx, batch)
    seconds = time.perf_counter() - started
    console.print(f"CDNOW demo: {customers} customers and {created} orders in {seconds:.1f}s")
    return {"skipped": False, "orders": created, "customers": customers, "seconds": seconds}


def _flush(db: Database, ctx: BulkContext, batch: list[PreparedOrder]) -> int:
    with db.unit_of_work() as session:
        outcomes = ingest_orders(session, ctx, batch)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise RuntimeError(f"CDNOW demo order rejected: {failed[0].error}")
    return sum(1 for o in outcomes if o.status == "created")
