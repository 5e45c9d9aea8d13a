"""A small purchase history whose KPIs, cohorts and RFM scores are worked out by hand in the tests."""

from __future__ import annotations

from datetime import date

import duckdb

from patronage.analytics.calendar import day_number
from patronage.analytics.compute import Options
from patronage.analytics.extract import open_store

AS_OF = date(2024, 3, 31)
WINDOW = 31  # "active" = ordered in the 31 days before the instant

CUSTOMERS = [  # id, acquisition channel
    (1, "web"), (2, "store"), (3, "web"), (4, "store"), (5, "web"), (6, None),
]
ORDERS = [  # id, customer, day, revenue, status
    (1, 1, date(2024, 1, 5), 100.0, "paid"),
    (2, 1, date(2024, 2, 5), 50.0, "paid"),
    (3, 1, date(2024, 3, 9), 10.0, "paid"),
    (4, 2, date(2024, 1, 20), 30.0, "paid"),
    (5, 2, date(2024, 3, 25), 15.0, "shipped"),
    (6, 3, date(2024, 2, 1), 20.0, "paid"),
    (7, 3, date(2024, 3, 3), 25.0, "delivered"),
    (8, 4, date(2024, 3, 15), 40.0, "paid"),
    (9, 4, date(2024, 3, 20), 60.0, "paid"),
    (10, 5, date(2024, 1, 10), 80.0, "cancelled"),  # never counts: customer 5 is a prospect
]
MEMBERS = [(1, date(2024, 2, 1), "gold"), (4, date(2024, 3, 1), "silver")]
REDEMPTIONS = [(1, 1, date(2024, 3, 10), 5.0)]
EVENTS = [(1, 1, "review_posted", date(2024, 3, 11))]


def build_store() -> duckdb.DuckDBPyConnection:
    store = open_store(None)
    for cid, channel in CUSTOMERS:
        store.execute(
            "INSERT INTO customers (id, acquisition_channel, lifecycle_stage) VALUES (?, ?, 'new')", [cid, channel]
        )
    for oid, cid, day, revenue, status in ORDERS:
        store.execute(
            "INSERT INTO orders (id, customer_id, dnum, revenue, total, status) VALUES (?, ?, ?, ?, ?, ?)",
            [oid, cid, day_number(day), revenue, revenue, status],
        )
    for cid, joined, tier in MEMBERS:
        store.execute("INSERT INTO members VALUES (?, ?, ?)", [cid, day_number(joined), tier])
    for rid, cid, day, value in REDEMPTIONS:
        store.execute("INSERT INTO redemptions VALUES (?, ?, ?, ?)", [rid, cid, day_number(day), value])
    for eid, cid, kind, day in EVENTS:
        store.execute("INSERT INTO events (id, customer_id, type, dnum) VALUES (?, ?, ?, ?)",
                      [eid, cid, kind, day_number(day)])
    store.execute("INSERT INTO segment_members VALUES (10, 1), (10, 2)")
    return store


def options(**overrides: object) -> Options:
    values: dict[str, object] = {
        "as_of": AS_OF, "active_window_days": WINDOW, "loyal_min_orders": 3, "segment_names": {"10": "VIP"},
    }
    values.update(overrides)
    return Options(**values)  # type: ignore[arg-type]


def random_store(customers: int = 150, seed: int = 3) -> duckdb.DuckDBPyConnection:
    """A seeded random history (channels, members with tiers, redemptions, segments, merges, cancels)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    store = open_store(None)
    start = day_number(date(2023, 10, 1))
    channels = ["web", "app", "store", None]
    for cid in range(1, customers + 1):
        merged = cid - 1 if cid % 37 == 0 else None
        store.execute(
            "INSERT INTO customers (id, acquisition_channel, lifecycle_stage, merged_into_id) VALUES (?, ?, ?, ?)",
            [cid, channels[cid % 4], "advocate" if cid % 29 == 0 else "new", merged],
        )
    oid = 0
    for cid in range(1, customers + 1):
        first = start + int(rng.integers(0, 170))
        for _ in range(1 + int(rng.poisson(2.5))):
            oid += 1
            day = min(first + int(rng.integers(0, 200)), day_number(AS_OF) + 3)  # a few after as-of
            status = "cancelled" if rng.random() < 0.05 else "paid"
            revenue = float(np.round(rng.lognormal(3, 0.5), 2))
            store.execute(
                "INSERT INTO orders (id, customer_id, dnum, revenue, total, status) VALUES (?, ?, ?, ?, ?, ?)",
                [oid, cid, day, revenue, revenue, status],
            )
        if cid % 3 == 0:
            store.execute("INSERT INTO members VALUES (?, ?, ?)",
                          [cid, first + int(rng.integers(-10, 60)), ["gold", "silver", None][cid % 9 // 3]])
        if cid % 5 == 0:
            store.execute("INSERT INTO redemptions VALUES (?, ?, ?, ?)", [cid, cid, first + 20, 2.5])
        if cid % 4 == 0:
            store.execute("INSERT INTO segment_members VALUES (7, ?)", [cid])
        if cid % 11 == 0:
            store.execute("INSERT INTO events (id, customer_id, type, dnum) VALUES (?, ?, 'review_posted', ?)",
                          [cid, cid, first])
    return store
