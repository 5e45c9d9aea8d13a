"""Streaming readers: records out of CSV or JSON Lines files, never the whole file in memory.

Each record carries the line number it starts on (for the error report). Orders in CSV have one row per
line item with the order's columns repeated; consecutive rows with the same order id form one order.
Orders in JSON Lines come as ``JsonLine``s, unparsed: the import validates their bytes directly and
parses only those its fast path does not take (``JsonLine.record``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

Format = Literal["csv", "jsonl"]
Progress = Callable[[int], None]

# CSV columns of an order line (the rest are order columns). ``line_discount`` maps to the line's discount.
LINE_COLUMNS = {
    "line_id": "line_id", "sku": "sku", "name": "name", "category": "category", "quantity": "quantity",
    "unit_price": "unit_price", "line_discount": "discount", "is_reward": "is_reward",
}
LIST_SEPARATOR = "|"  # tags in CSV: "vip|newsletter"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass
class Record:
    line: int
    data: dict[str, Any] | None
    error: str | None = None
    key: str | None = None  # the record's external id, when readable


class CountingReader:
    """Lines of a binary file, reporting bytes consumed to ``progress``."""

    def __init__(self, handle: IO[bytes], progress: Progress | None) -> None:
        self.handle = handle
        self.progress = progress
        self._pending = 0

    def lines(self) -> Iterator[str]:
        for _, text in self.raw_lines():
            yield text

    def raw_lines(self) -> Iterator[tuple[bytes, str]]:
        """Each line as read and as decoded (decoding also checks the bytes are UTF-8)."""
        for raw in self.handle:
            self._pending += len(raw)
            if self._pending >= 1 << 20 and self.progress is not None:
                self.progress(self._pending)
                self._pending = 0
            yield raw, raw.decode("utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8")
        if self.progress is not None and self._pending:
            self.progress(self._pending)
            self._pending = 0


def detect_format(path: Path, given: str | None) -> Format:
    if given in ("csv", "jsonl"):
        return given  # type: ignore[return-value]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {path.name}; pass --format csv or --format jsonl")


def _flag(value: str) -> Any:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    return False if lowered in _FALSE else value  # anything else: the schema reports it


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value  # the schema reports it


def _list(value: str) -> list[str]:
    return [t.strip() for t in value.split(LIST_SEPARATOR) if t.strip()]


CONVERTERS: dict[str, Any] = {
    "is_reward": _flag, "taxes_included": _flag, "active": _flag, "tags": _list,
    "attributes": _json, "properties": _json, "lines": _json,
}


def csv_value(column: str, value: str) -> Any:
    """A CSV cell as the JSON value the schema expects (empty cells are left out by the caller)."""
    value = value.strip()
    convert = CONVERTERS.get(column)
    return convert(value) if convert else value


def _row_dict(row: dict[str | None, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_column, value in row.items():
        if raw_column is None or value is None:
            continue
        column = raw_column.strip()
        if not column or value.strip() == "":
            continue
        if column.startswith(("attributes.", "properties.")):
            group, _, name = column.partition(".")
            out.setdefault(group, {})[name] = value.strip()
            continue
        out[column] = csv_value(column, value)
    return out


@dataclass(slots=True)
class JsonLine:
    """A non-blank line of a JSON Lines file, not parsed yet."""

    line: int
    raw: bytes  # as in the file
    text: str  # decoded

    def record(self) -> Record:
        """The line parsed (or why it cannot be)."""
        try:
            data = json.loads(self.text)
        except ValueError as exc:
            return Record(self.line, None, f"not valid JSON: {exc}")
        if not isinstance(data, dict):
            return Record(self.line, None, "each line must be one JSON object")
        return Record(self.line, data, key=_key(data))


def read_jsonl_lines(handle: IO[bytes], progress: Progress | None = None) -> Iterator[JsonLine]:
    for number, (raw, text) in enumerate(CountingReader(handle, progress).raw_lines(), start=1):
        if text.strip():
            yield JsonLine(number, raw, text)


def read_jsonl(handle: IO[bytes], progress: Progress | None = None) -> Iterator[Record]:
    for line in read_jsonl_lines(handle, progress):
        yield line.record()


def read_csv(handle: IO[bytes], progress: Progress | None = None) -> Iterator[Record]:
    reader = csv.DictReader(CountingReader(handle, progress).lines())
    start = 2
    for row in reader:
        data = _row_dict(row)
        if None in row:
            yield Record(start, None, "more cells than header columns")
        else:
            yield Record(start, data, key=_key(data))
        start = reader.line_num + 1


def _key(data: dict[str, Any]) -> str | None:
    value = data.get("external_id", data.get("order_external_id"))
    return str(value) if value is not None else None


def read_orders_csv(handle: IO[bytes], progress: Progress | None = None) -> Iterator[Record]:
    """Group consecutive line rows of one order into one order record (with ``lines``)."""
    current: Record | None = None
    for record in read_csv(handle, progress):
        if record.data is None:
            yield record
            continue
        row = record.data
        if "external_id" not in row and "order_external_id" in row:
            row["external_id"] = row.pop("order_external_id")
        line = {LINE_COLUMNS[c]: row.pop(c) for c in list(row) if c in LINE_COLUMNS}
        key = row.get("external_id")
        if current is not None and current.data is not None and key is not None and current.key == str(key):
            if line:
                current.data["lines"].append(line)
            continue
        if current is not None:
            yield current
        row["lines"] = [line] if line else []
        current = Record(record.line, row, key=str(key) if key is not None else None)
    if current is not None:
        yield current


def open_records(path: Path, fmt: Format, kind: str, progress: Progress | None = None) -> Iterator[Record]:
    with path.open("rb") as handle:
        if fmt == "jsonl":
            yield from read_jsonl(handle, progress)
        elif kind == "orders":
            yield from read_orders_csv(handle, progress)
        else:
            yield from read_csv(handle, progress)


def open_orders(path: Path, fmt: Format, progress: Progress | None = None) -> Iterator[Record | JsonLine]:
    """A file's orders: JSON Lines unparsed (``JsonLine``), CSV rows grouped into records."""
    with path.open("rb") as handle:
        if fmt == "jsonl":
            yield from read_jsonl_lines(handle, progress)
        else:
            yield from read_orders_csv(handle, progress)
