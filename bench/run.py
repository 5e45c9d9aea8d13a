"""Run the benchmarks and print one JSON document with every result.

    python bench/run.py                 # every bench/bench_*.py
    python bench/run.py api             # bench/bench_api.py only (``bench_api`` works too)
    python bench/run.py api -- --rounds 2 --duration 2   # arguments after -- go to every bench

Each benchmark runs in its own process (``python -m bench.<name>``) and prints one JSON document.
The exit status is 1 when a benchmark fails to run or reports ``"pass": false``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def discover() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def resolve(names: list[str]) -> list[str]:
    available = discover()
    if not names:
        return available
    chosen = []
    for name in names:
        stem = name if name.startswith("bench_") else f"bench_{name}"
        stem = stem.removesuffix(".py")
        if stem not in available:
            raise SystemExit(f"unknown benchmark {name!r}; available: {', '.join(available)}")
        chosen.append(stem)
    return chosen


def run_one(stem: str, extra: list[str]) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{stem}", *extra], cwd=ROOT, capture_output=True, text=True, check=False
    )
    elapsed = round(time.monotonic() - started, 1)
    if proc.returncode != 0:
        return {"bench": stem, "pass": False, "error": f"exit {proc.returncode}", "stderr": proc.stderr[-4000:],
                "wall_s": elapsed}
    try:
        document: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"bench": stem, "pass": False, "error": "output is not one JSON document",
                "stdout": proc.stdout[-4000:], "stderr": proc.stderr[-4000:], "wall_s": elapsed}
    document.setdefault("wall_s", elapsed)
    return document


def main() -> int:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)
    results = {stem.removeprefix("bench_"): run_one(stem, extra) for stem in resolve(args.names)}
    passed = all(r.get("pass") is not False for r in results.values())
    json.dump({"pass": passed, "benchmarks": results}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
