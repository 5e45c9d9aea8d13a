"""Real servers for the battery: uvicorn processes (forked by tests/battery/zygote.py) on ephemeral ports,
killed with SIGKILL when a test wants a crash, and HTTP clients racing them from real threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

from patronage.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


class Zygote:
    """One process that imported Patronage and forks servers on demand (see zygote.py)."""

    def __init__(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            # Library thread pools started at import would not survive a fork: keep them single-threaded.
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.battery.zygote"], cwd=REPO_ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self._lock = threading.Lock()
        assert json.loads(self._readline())["ready"]

    def _readline(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server zygote died (exit {self._proc.poll()})")
        return line

    def spawn(self, env: dict[str, str], log: Path, *, worker: bool) -> tuple[int, int]:
        with self._lock:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps({"env": env, "log": str(log), "worker": worker}) + "\n")
            self._proc.stdin.flush()
            reply = json.loads(self._readline())
        return int(reply["pid"]), int(reply["port"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class LiveServer:
    """``patronage serve`` in its own process, against the test's database."""

    def __init__(self, zygote: Zygote, settings: Settings, log_dir: Path, *, worker: bool = False,
                 **env: str) -> None:
        self.zygote = zygote
        self.worker = worker
        self.log_dir = log_dir
        self.env = {
            "PATRONAGE_DATABASE_URL": settings.database_url,
            "PATRONAGE_ENV": "test",
            "PATRONAGE_SECRET_KEY": settings.secret_key,
            "PATRONAGE_BASE_URL": settings.base_url,
            "PATRONAGE_LOG_LEVEL": "WARNING",
            "PATRONAGE_LOG_JSON": "false",
            "PATRONAGE_SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
            "PATRONAGE_WORKER_POLL_INTERVAL": "0.05",
            **env,
        }
        self.pid: int | None = None
        self.base_url = ""
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.log_dir / f"server-{self.starts}.log"

    def start(self, timeout: float = 90.0) -> str:
        self.starts += 1
        self.pid, port = self.zygote.spawn(self.env, self.log, worker=self.worker)
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=5).status_code == 200:
                    return self.base_url
            except httpx.TransportError:
                pass
            if not _alive(self.pid) or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no rollback, no flush; in-flight requests are cut."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        self._wait_gone()

    def stop(self) -> None:
        if self.pid is None or not _alive(self.pid):
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self._wait_gone(timeout=30)
        except TimeoutError:
            os.kill(self.pid, signal.SIGKILL)
            self._wait_gone()

    def _wait_gone(self, timeout: float = 30.0) -> None:
        assert self.pid is not None
        deadline = time.monotonic() + timeout
        while _alive(self.pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"server {self.pid} did not exit")
            time.sleep(0.01)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=120, **kwargs)


def race(n: int, attempt: Callable[[httpx.Client, int], T], base_url: str) -> list[T]:
    """Run ``attempt(client, i)`` for i in 0..n-1 on n threads, each with its own connection, all released
    at once by a barrier after connecting; returns the results in order."""
    gate = threading.Barrier(n, timeout=120)

    def run(i: int) -> T:
        with httpx.Client(base_url=base_url, timeout=180, limits=httpx.Limits(max_connections=1)) as http:
            http.get("/healthz")  # open the connection before the gate, so the requests leave together
            gate.wait()
            return attempt(http, i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def outcome(response: httpx.Response) -> str:
    """A response as ``"<status>"`` or ``"<status>:<code>"`` for problems."""
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        return f"{response.status_code}:{response.json().get('code')}"
    return str(response.status_code)


def statuses(responses: Sequence[httpx.Response]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in responses:
        counts[outcome(r)] = counts.get(outcome(r), 0) + 1
    return counts
