"""uvicorn with one listening socket per worker process (``SO_REUSEPORT``).

uvicorn's own ``--workers`` binds one socket in the supervisor and hands it to every worker.
Whichever worker wakes first then accepts a whole burst of new connections (asyncio accepts up
to 100 a turn), so keep-alive clients — a reverse proxy's upstream pool, a load generator — stay
on that worker: two SQLite workers under 64 connections were measured at 68 % and 28 % of the
CPU samples. With a socket of each worker's own, the kernel spreads new connections over the
workers by address hash.

The supervisor binds the address first (without listening: it never accepts), so a port in use
— by anything, another Hongyi included — stops start-up before any worker is spawned. Each worker receives a stand-in for that socket:
unpickled in the worker, it binds a new socket to the same address. uvicorn's ``Multiprocess``
does the rest as before (health checks, restarting a dead worker, signals).
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess


def _bind(family: int, host: str, port: int) -> socket.socket:
    sock = _WorkerSocket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class _WorkerSocket(socket.socket):
    """Pickled (into a spawned worker) as "bind a new socket to my address", not as this socket."""

    def __reduce__(self) -> tuple[Any, ...]:  # type: ignore[override]
        host, port = self.getsockname()[:2]
        return (_bind, (self.family, host, port))


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """``uvicorn.run(app, host=…, port=…, workers=…, **options)``, each worker listening on its own socket."""
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # First a plain bind: SO_REUSEPORT alone would let a second server (of the same user) join
        # this port and silently take half of the connections.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
            port = probe.getsockname()[1]
        sock = _bind(family, host, port)
    except OSError as exc:
        print(f"无法监听 / cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from None
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m server.core.serving APP --host H --port P --workers N``: the benchmarks serve
    their reference apps (the bare echo) the same way as ``python -m server serve``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m server.core.serving")
    parser.add_argument("app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--app-dir", default=None)
    args = parser.parse_args(argv)
    if args.app_dir:
        sys.path.insert(0, args.app_dir)  # spawned workers inherit sys.path
    run(
        args.app, host=args.host, port=args.port, workers=args.workers,
        loop="uvloop", http="httptools", log_level="warning", access_log=False, proxy_headers=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
