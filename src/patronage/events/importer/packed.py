"""Prepared orders in their compact form: the values the database receives, in plain tuples.

A ``PreparedOrder`` holds Decimals, datetimes and nested dicts: converting them for the driver, and
pickling them from the import's reader process, costs more per order than the database write itself.
A ``Packed`` order carries the same order already encoded for the database (``kit.upsert.row_encoder``:
floats and text on SQLite, text for ``COPY`` on PostgreSQL) in tuples of plain values, plus its
content hash and its canonical JSON (from which ``model()`` rebuilds the ``OrderIn`` for the rare order
that takes the single-order service: a changed re-send, a repeat, a customer known by e-mail only).
Its fields are plain values, so a chunk of them crosses the reader's pipe as one ``marshal`` blob
(``stream.OrderChunk``) and comes back as ``Packed`` through ``packed_from_tuples``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple, cast

from sqlalchemy import Table

from patronage.events.importer.prepare import PreparedOrder, canonical_json, order_from_canonical
from patronage.events.models import Order, OrderLine
from patronage.events.schemas import OrderIn
from patronage.kit.upsert import row_encoder

ORDERS = cast(Table, Order.__table__)
LINES = cast(Table, OrderLine.__table__)
# What a packed order carries (its ``row``), and what the writer adds (its own id, customer, clock).
PACKED_ORDER_COLUMNS = (
    "external_id", "currency", "subtotal", "discount_total", "shipping_total", "tax_total", "other_total",
    "taxes_included", "total", "channel", "store", "status", "placed_at", "attributes", "content_hash",
)
WRITER_ORDER_COLUMNS = ("workspace_id", "refunded_total", "source", "created_at", "updated_at")
PACKED_LINE_COLUMNS = ("line_id", "sku", "name", "category", "quantity", "unit_price", "discount", "is_reward")
WRITER_LINE_COLUMNS = ("workspace_id", "created_at", "updated_at")
LINE_SKU, LINE_NAME, LINE_CATEGORY = 1, 2, 3  # positions in a packed line
STATUS = PACKED_ORDER_COLUMNS.index("status")


class Packed(NamedTuple):
    """One valid order, ready for the bulk insert (see the module's docstring)."""

    line: int  # where the record starts in its file (0: built by code)
    key: str | None  # the external id as the file wrote it (for the error report)
    external_id: str
    customer: str | None  # customer_external_id; None: known by e-mail only
    digest: str
    canonical: bytes
    row: tuple[Any, ...]  # PACKED_ORDER_COLUMNS, encoded
    lines: tuple[tuple[Any, ...], ...]  # PACKED_LINE_COLUMNS, encoded
    needs_catalogue: bool  # a line with a sku but no name or category: the catalogue fills them in

    def model(self) -> OrderIn:
        """The ``OrderIn`` this order was validated as (for the single-order service)."""
        return order_from_canonical(self.canonical)


# ``Packed`` from a tuple of its fields in C: ``Packed(...)`` and its pickling run Python code per order.
_as_packed = partial(tuple.__new__, Packed)
_line_values = itemgetter(*PACKED_LINE_COLUMNS)  # a prepared line's values, in PACKED_LINE_COLUMNS order
_order_amounts = itemgetter("discount_total", "shipping_total", "tax_total", "other_total", "taxes_included")


def packed_from_tuples(rows: Iterable[tuple[Any, ...]]) -> list[Packed]:
    """Packed orders back from plain tuples of their fields (how a chunk crosses the reader's pipe)."""
    return list(map(_as_packed, rows))


class OrderCodec:
    """Packs prepared orders for one database dialect; the workspace currency fills a missing one."""

    def __init__(self, dialect: str, currency: str) -> None:
        self.dialect = dialect
        self.currency = currency
        self._order = row_encoder(dialect, ORDERS, PACKED_ORDER_COLUMNS)
        self._line = row_encoder(dialect, LINES, PACKED_LINE_COLUMNS)
        self._writer_order = row_encoder(dialect, ORDERS, WRITER_ORDER_COLUMNS)
        self._writer_line = row_encoder(dialect, LINES, WRITER_LINE_COLUMNS)

    def pack(self, prepared: PreparedOrder, line: int = 0, key: str | None = None) -> Packed:
        o = prepared.data
        external_id = o["external_id"]
        row = self._order((
            external_id, o["currency"] or self.currency, prepared.subtotal, *_order_amounts(o), prepared.total,
            o["channel"], o["store"], o["status"], o["placed_at"], o["attributes"], prepared.digest,
        ))
        lines = tuple(map(self._line, map(_line_values, o["lines"])))
        return _as_packed((
            line, external_id if key is None or key == external_id else key, external_id, o["customer_external_id"],
            prepared.digest, prepared.canonical or canonical_json(o), row, lines, any(map(wants_catalogue, lines)),
        ))

    def writer_order_values(self, workspace_id: int, source: str, now: datetime) -> tuple[Any, ...]:
        """WRITER_ORDER_COLUMNS, encoded once per chunk."""
        return self._writer_order((workspace_id, 0, source, now, now))

    def writer_line_values(self, workspace_id: int, now: datetime) -> tuple[Any, ...]:
        """WRITER_LINE_COLUMNS, encoded once per chunk."""
        return self._writer_line((workspace_id, now, now))


def wants_catalogue(line: tuple[Any, ...]) -> bool:
    """A packed line with a sku but no name or category: the catalogue fills them in (as the API does)."""
    return bool(line[LINE_SKU]) and (line[LINE_NAME] is None or line[LINE_CATEGORY] is None)


def filled_from_catalogue(
    line: tuple[Any, ...], catalogue: Mapping[str, tuple[str | None, str | None]]
) -> tuple[Any, ...]:
    """The packed line with its missing name / category taken from the product catalogue."""
    if not wants_catalogue(line):
        return line
    sku, name, category = line[LINE_SKU], line[LINE_NAME], line[LINE_CATEGORY]
    known_name, known_category = catalogue.get(sku, (None, None))
    return (
        *line[:LINE_NAME], name if name is not None else known_name,
        category if category is not None else known_category, *line[LINE_CATEGORY + 1:],
    )

