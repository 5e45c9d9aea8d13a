"""Shared benchmark helpers: run a server in a subprocess, drive it with keep-alive load, summarise.

Every benchmark prints one JSON document and compares against a reference measured in the same run
(see bench/run.py). Numbers are only comparable within one run on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"

# The same server settings for every side of a comparison: one process, uvloop, httptools, no access log.
UVICORN_ARGS = (
    "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    "--timeout-keep-alive", "30",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def patronage_command() -> list[str]:
    """The ``patronage`` CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("patronage")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from patronage.cli import main; main()"]


def run_cli(args: Sequence[str], env: Mapping[str, str]) -> str:
    """Run ``patronage ARGS``; returns stdout, raises with stderr on failure."""
    proc = subprocess.run(
        [*patronage_command(), *args], env=dict(env), capture_output=True, text=True, check=False, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"patronage {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONAGE_")}
    env.update({"PATRONAGE_LOG_LEVEL": "WARNING", "PATRONAGE_LOG_JSON": "true"})
    env.update(extra)
    return env


@contextlib.contextmanager
def temp_dir(prefix: str = "patronage-bench-") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as raw:
        yield Path(raw)


@dataclass
class Server:
    """A uvicorn server in a subprocess; ``url`` is its base URL once ``start`` returns."""

    app: str
    env: Mapping[str, str] = field(default_factory=base_env)
    app_dir: Path | None = None
    extra_args: Sequence[str] = ()
    health_path: str = "/healthz"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        if self.proc is not None:
            raise RuntimeError("server already started")
        health_path = self.health_path
        self.port = self.port or free_port()
        args = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1", "--port", str(self.port),
                *UVICORN_ARGS, *self.extra_args]
        if self.app_dir is not None:
            args += ["--app-dir", str(self.app_dir)]
        handle, name = tempfile.mkstemp(prefix="uvicorn-", suffix=".log")
        self.log = Path(name)
        self.proc = subprocess.Popen(args, env=dict(self.env), cwd=ROOT, stdout=handle, stderr=handle)
        os.close(handle)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + health_path, timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.app} did not answer {health_path} within {timeout} s")

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server process has used so far; None where /proc is missing."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.unlink(missing_ok=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass
class LoadResult:
    requests: int
    errors: int
    duration_s: float
    latencies_ms: list[float]
    error_samples: list[str]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 3),
            "throughput_rps": round(self.requests / self.duration_s, 1) if self.duration_s else 0.0,
            "p50_ms": round(percentile(self.latencies_ms, 50), 3),
            "p99_ms": round(percentile(self.latencies_ms, 99), 3),
            **({"error_samples": self.error_samples} if self.error_samples else {}),
        }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): an observed latency, never an invented one."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


async def _load(
    url: str,
    *,
    method: str,
    headers: Mapping[str, str],
    body: bytes | None,
    concurrency: int,
    duration: float | None,
    total: int | None,
    expect: int,
) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    samples: list[str] = []
    issued = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=dict(headers)) as client:
        start = time.perf_counter()
        deadline = start + duration if duration is not None else None

        async def worker() -> None:
            nonlocal errors, issued
            while True:
                if total is not None:
                    if issued >= total:
                        return
                    issued += 1
                elif deadline is not None and time.perf_counter() >= deadline:
                    return
                t0 = time.perf_counter()
                try:
                    async with client.request(method, url, data=body) as response:
                        await response.read()
                        ok = response.status == expect
                        status = str(response.status)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    ok, status = False, type(exc).__name__
                latencies.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors += 1
                    if len(samples) < 5:
                        samples.append(status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return LoadResult(len(latencies), errors, elapsed, latencies, samples)


def load(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    concurrency: int = 32,
    duration: float | None = 5.0,
    total: int | None = None,
    expect: int = 200,
) -> LoadResult:
    """``concurrency`` keep-alive connections hammering ``url`` for ``duration`` seconds or ``total`` requests."""
    if (duration is None) == (total is None):
        raise ValueError("give exactly one of duration and total")
    runner: Callable[[Coroutine[Any, Any, LoadResult]], LoadResult]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    return runner(
        _load(url, method=method, headers=headers or {}, body=body, concurrency=concurrency,
              duration=duration, total=total, expect=expect)
    )


def merge(results: Sequence[LoadResult]) -> LoadResult:
    return LoadResult(
        sum(r.requests for r in results),
        sum(r.errors for r in results),
        sum(r.duration_s for r in results),
        [x for r in results for x in r.latencies_ms],
        [s for r in results for s in r.error_samples][:5],
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def emit(document: Mapping[str, Any]) -> None:
    """Print the benchmark's one JSON document on stdout."""
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def machine() -> dict[str, Any]:
    import platform

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(terse=True),
        "python_loop_cpu_seconds": python_loop_cpu_seconds(),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def python_loop_cpu_seconds(iterations: int = 10_000_000) -> float:
    """CPU seconds of a fixed pure-Python loop (best of three): how fast this machine runs the interpreter.

    Absolute targets (orders/s) depend on the machine as much as on the code; this number lets runs on
    different machines be compared.
    """
    best = float("inf")
    for _ in range(3):
        started, total = time.process_time(), 0
        for i in range(iterations):
            total += i
        best = min(best, time.process_time() - started)
    return round(best, 3)
