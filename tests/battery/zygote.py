"""A server factory: imports Patronage once, then forks a real uvicorn server process per request.

Importing the application costs seconds of CPU; the battery starts servers often (every kill point of
the crash test restarts one). This process pays the import once and answers each ``start`` command by
forking a child that serves ``create_app(Settings())`` with uvicorn on a socket bound before the fork,
exactly as ``patronage serve`` does. The child is an ordinary process: ``kill -9`` ends it on the spot,
with whatever it was doing half done.

Protocol (one JSON object per line on stdin, one reply per line on stdout):
``{"env": {...}, "log": "/path", "worker": false}`` -> ``{"pid": 123, "port": 4567}``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys


def _serve(sock: socket.socket, env: dict[str, str], log_path: str, worker: bool) -> None:
    """In the child: become the server. Never returns."""
    os.setsid()  # its own process group: a signal to the test never reaches it by accident
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    try:
        import uvicorn

        from patronage.app import create_app
        from patronage.config import Settings, get_settings
        from patronage.kit.logging import configure_logging

        get_settings.cache_clear()
        settings = Settings()
        configure_logging(settings.log_level, settings.log_json)
        app = create_app(settings, run_worker=worker)
        # Keep-alive as long as race()'s barrier: its first connections sit idle until the last of n
        # threads has connected, which on a loaded machine outlasts uvicorn's 5 s default; the server then
        # closed them under the client ("connection reset by peer").
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                                timeout_keep_alive=120)
        uvicorn.Server(config).run(sockets=[sock])
    except BaseException:
        import traceback

        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def _reap(*_: object) -> None:
    """Reap finished servers at once (their CPU time then counts towards this process's children)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def main() -> None:
    import patronage.app  # noqa: F401 - the expensive import, paid once here
    from patronage import domains

    domains.load_tasks()
    for module in domains.ROUTERS:
        __import__(module)
    import uvicorn  # noqa: F401

    signal.signal(signal.SIGCHLD, _reap)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(command.get("port", 0))))
        sock.listen(2048)
        port = sock.getsockname()[1]
        pid = os.fork()
        if pid == 0:
            _serve(sock, command["env"], command["log"], bool(command.get("worker")))
        sock.close()
        print(json.dumps({"pid": pid, "port": port}), flush=True)


if __name__ == "__main__":
    main()
