"""kit.garbage.few_collections: rare collections while bulk work runs, the threshold restored after."""

from __future__ import annotations

import gc
import threading

import pytest

from patronage.kit.garbage import GC_THRESHOLD, few_collections


def test_the_threshold_is_raised_inside_and_restored_after_even_on_error() -> None:
    before = gc.get_threshold()

    @few_collections
    def work() -> int:
        return gc.get_threshold()[0]

    @few_collections
    def fails() -> None:
        raise RuntimeError("boom")

    assert work() == GC_THRESHOLD
    with pytest.raises(RuntimeError):
        fails()
    assert gc.get_threshold() == before


def test_overlapping_calls_from_threads_restore_the_first_callers_threshold() -> None:
    before = gc.get_threshold()
    inside, release = threading.Barrier(2), threading.Event()
    seen: list[int] = []

    @few_collections
    def hold() -> None:
        inside.wait(10)
        release.wait(10)

    @few_collections
    def finish_first() -> None:
        inside.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    finish_first()  # ends while ``hold`` still runs: collections must stay rare for it
    seen.append(gc.get_threshold()[0])
    release.set()
    holder.join(10)
    assert seen == [GC_THRESHOLD]
    assert gc.get_threshold() == before
