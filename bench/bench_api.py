"""Throughput and latency of an authenticated trivial API call versus a bare FastAPI endpoint.

The real app: SQLite in a temporary directory, migrated and populated through the CLI (``patronage
migrate``, ``create-workspace``, ``create-api-key``), served by ``uvicorn patronage.asgi:app``; the call is
``GET /api/v1/workspace`` with an API key. The reference: bench/reference_app.py. Both run at the same
time under the same uvicorn settings and are measured in alternating rounds, so drift of the machine
(thermal, noisy neighbours) hits both sides alike. Target (issue "Platform foundation"): the real
call keeps at least 70 % of the bare endpoint's throughput.

    python -m bench.bench_api [--duration 4] [--rounds 4] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from bench._util import (
    BENCH_DIR,
    ROOT,
    LoadResult,
    Server,
    base_env,
    emit,
    load,
    machine,
    median,
    merge,
    run_cli,
    temp_dir,
)

TARGET_RATIO = 0.7

_CREATE_ALL = """
from patronage import domains
from patronage.config import get_settings
from patronage.kit.db import make_database
from patronage.kit.models import Base
domains.load_tasks()
Base.metadata.create_all(make_database(get_settings()).engine)
"""


def create_schema_from_models(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-c", _CREATE_ALL], env=env, check=True, cwd=ROOT)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with temp_dir() as tmp:
        env = base_env(
            PATRONAGE_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
            PATRONAGE_ENV="production",
            PATRONAGE_SECRET_KEY="bench-secret-key-0123456789",
        )
        if args.schema == "migrate":
            run_cli(["migrate"], env)
        else:  # while the migrations lag behind models being written: the schema straight from the models
            create_schema_from_models(env)
        run_cli(["create-workspace", "Bench Shop", "demo"], env)  # `demo` would also load its sample data
        secret = run_cli(["create-api-key", "demo", "bench", "--scope", "workspace:read"], env).strip()
        secret = secret.splitlines()[-1].strip()
        headers = {"Authorization": f"Bearer {secret}"}

        reference_env = base_env(BENCH_SQLITE_URL=env["PATRONAGE_DATABASE_URL"])
        reference = Server("reference_app:app", env=reference_env, app_dir=BENCH_DIR, health_path="/ping")
        with Server("patronage.asgi:app", env=env) as real, reference as ref:
            sides = {
                "patronage": (real.url + "/api/v1/workspace", headers),
                "bare_fastapi": (ref.url + "/ping", {}),
            }
            if args.orm_read:
                sides["bare_fastapi_orm_read"] = (ref.url + "/orm-read", {})
            # Warm both (imports, caches, the API key cache, SQLite page cache).
            for url, hdrs in sides.values():
                warm = load(url, headers=hdrs, concurrency=args.concurrency, duration=args.warmup)
                if warm.errors:
                    raise RuntimeError(f"warm-up of {url} failed: {warm.error_samples}")
            servers = {"patronage": real, "bare_fastapi": ref, "bare_fastapi_orm_read": ref}
            runs: dict[str, list[LoadResult]] = {name: [] for name in sides}
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            order = list(sides)
            for round_ in range(args.rounds):
                for name in order[round_ % len(order):] + order[: round_ % len(order)]:  # rotate who goes first
                    url, hdrs = sides[name]
                    before = servers[name].cpu_seconds()
                    run = load(url, headers=hdrs, concurrency=args.concurrency, duration=args.duration)
                    after = servers[name].cpu_seconds()
                    runs[name].append(run)
                    if before is not None and after is not None and run.requests:
                        cpu[name].append((after - before) / run.requests * 1e6)

    result: dict[str, Any] = {}
    for name, rounds in runs.items():
        summary = merge(rounds).summary()
        summary["throughput_rps_per_round"] = [round(r.requests / r.duration_s, 1) for r in rounds]
        summary["throughput_rps"] = round(median([r.requests / r.duration_s for r in rounds]), 1)
        if cpu[name]:
            # Server CPU per request: steadier than throughput on a shared machine.
            summary["server_cpu_us_per_request"] = round(median(cpu[name]), 1)
        result[name] = summary
    ratio = result["patronage"]["throughput_rps"] / result["bare_fastapi"]["throughput_rps"]
    errors = result["patronage"]["errors"] + result["bare_fastapi"]["errors"]
    cpu_ratio = None
    if cpu["patronage"] and cpu["bare_fastapi"]:  # bare CPU / Patronage CPU per request, like the throughput ratio
        cost = {name: result[name]["server_cpu_us_per_request"] for name in result}
        cpu_ratio = cost["bare_fastapi"] / cost["patronage"]
    return {
        "bench": "api",
        "what": "GET /api/v1/workspace (API key, SQLite) vs bare FastAPI GET returning a small dict "
        "(and, for diagnosis, vs a bare FastAPI GET doing the same ORM read)",
        "settings": {
            "schema": args.schema,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "server": "uvicorn, 1 process, uvloop + httptools, no access log",
        },
        "machine": machine(),
        **result,
        "throughput_ratio": round(ratio, 3),
        **(
            {"throughput_ratio_vs_orm_read": round(
                result["patronage"]["throughput_rps"] / result["bare_fastapi_orm_read"]["throughput_rps"], 3
            )}
            if "bare_fastapi_orm_read" in result
            else {}
        ),
        **({"cpu_per_request_ratio": round(cpu_ratio, 3)} if cpu_ratio is not None else {}),
        "target_ratio": TARGET_RATIO,
        "pass": ratio >= TARGET_RATIO and errors == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per side per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument(
        "--orm-read", action=argparse.BooleanOptionalAction, default=True,
        help="also measure a bare FastAPI route doing the same ORM read (diagnosis; not part of the target)",
    )
    parser.add_argument(
        "--schema", choices=("migrate", "models"), default="migrate",
        help="build the database with `patronage migrate` (default) or from the models (create_all)",
    )
    emit(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
