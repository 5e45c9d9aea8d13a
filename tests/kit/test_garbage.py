"""kit.garbage: rare collections while bulk work runs (the threshold restored after), and a server's settling."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
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


def test_a_server_process_freezes_what_it_loaded_and_collects_young_objects_less_often() -> None:
    # In a child process: freezing is for good, and this test process must keep collecting as before.
    probe = (
        "import gc, json; from patronage.kit.garbage import SERVING_THRESHOLD, settle_for_serving;"
        "import patronage.asgi; print(json.dumps([gc.get_freeze_count(), gc.get_threshold()[0], SERVING_THRESHOLD]))"
    )
    env = {**os.environ, "PATRONAGE_DATABASE_URL": "sqlite:///:memory:", "PATRONAGE_LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    frozen, threshold, wanted = json.loads(out.stdout.strip().splitlines()[-1])
    assert frozen > 100_000  # the application and its libraries: out of every later collection's walk
    assert threshold == wanted
