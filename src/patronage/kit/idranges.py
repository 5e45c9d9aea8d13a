"""Id sets as ``[[first, last], ...]`` ranges: how batch domain events name thousands of rows in a few bytes.

Ids allocated for one bulk insert are (nearly always) consecutive, so a chunk of 20,000 orders is one
range; the encoding stays correct for any set of ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

Ranges = list[list[int]]


def to_ranges(ids: Iterable[int]) -> Ranges:
    """Sorted, merged, inclusive ranges covering exactly ``ids``."""
    out: Ranges = []
    for i in sorted(set(ids)):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def from_ranges(ranges: Sequence[Sequence[Any]]) -> Iterator[int]:
    for first, last in ranges:
        yield from range(int(first), int(last) + 1)


def count(ranges: Sequence[Sequence[Any]]) -> int:
    return sum(int(last) - int(first) + 1 for first, last in ranges)
