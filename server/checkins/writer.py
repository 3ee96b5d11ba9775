"""The check-in writer: one process that judges and writes members' check-ins for the web workers.

Why a process of its own (SQLite): one web worker does everything on one core — HTTP, sign-in,
judging, SQL — while the second core idles, and two workers on one SQLite file take turns at the
writer lock and re-read each other's pages. Here the web worker keeps HTTP and the bearer check,
the writer keeps judging and writing, and each has a core. It is still one writer with group
commit (``server.core.db``); nothing else changes hands.

``serve`` starts it (``WriterProcess``) and restarts it if it dies. A web worker forwards the two
hot routes (``fastlane``) over a Unix socket (``WriterClient``); whenever the writer cannot answer —
not started, gone, restarting, too slow — the worker judges the request itself, as it does without
a writer. That is safe: check-ins are idempotent by ``client_uuid``, and the writer lock serialises
the two processes, so a request the writer did commit is answered from its stored result.

Frames: a 4-byte little-endian length, then msgpack.
  request  [id, route, member_id, member_org_path, member_status, body]   route: index into
           ``fastlane.ANSWERS`` (0 single, 1 sync), or FORGET_RULES (body empty)
  answer   [id, http_status, payload]   http_status 0: not answered, the worker judges it
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from server.checkins import services
from server.settings import Settings

log = logging.getLogger("hongyi")

FORGET_RULES = 9
CALL_TIMEOUT = 30.0  # seconds a worker waits for an answer before judging the request itself
RETRY_AFTER = 1.0  # seconds between attempts to reach a writer that could not be reached
_HEADER = 4
TURN = 32  # requests the writer judges before it sends their answers (see _WriterSide)

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


def socket_address(name: str) -> str:
    """``@name`` is an abstract Unix socket (Linux): no file to leave behind, no path length limit."""
    return "\0" + name[1:] if name.startswith("@") else name


class _Framed(asyncio.Protocol):
    """Length-prefixed msgpack frames; the writes of one event-loop turn go out in one syscall."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        end = len(buffer)
        while end - start >= _HEADER:
            size = int.from_bytes(buffer[start : start + _HEADER], "little")
            if end - start - _HEADER < size:
                break
            frame = _decode(bytes(buffer[start + _HEADER : start + _HEADER + size]))
            start += _HEADER + size
            self.frame_received(frame)
        del buffer[:start]

    def frame_received(self, frame: list[Any]) -> None:
        raise NotImplementedError

    def send(self, frame: list[Any]) -> None:
        payload = _encode(frame)
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(len(payload).to_bytes(_HEADER, "little"))
        self._out.append(payload)

    def _flush(self) -> None:
        if not self._out:
            return
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))


# --------------------------------------------------------------------------- the writer's side


class _WriterSide(_Framed):
    """Judges the worker's requests in turns of at most ``TURN``: one group commit per turn, whose
    answers go out before the next turn is judged.

    Why turns: with a task per request, all at once, every request in flight became one group — the
    writer judged all 64, committed and answered, then sat idle for a third of the time (measured)
    while the worker answered those 64 clients and read their next requests, and the worker sat
    idle meanwhile. In turns, the worker answers one turn while the writer judges the next: the
    writer went from 74–83 % to 96–99 % busy, and check-ins/s rose by 15–67 % in interleaved pairs
    (docs/architecture.md). Turns of 16 and 24 committed more often for the same work; 48 and 64
    left gaps again."""

    def __init__(self, ctx: Any, answers: tuple[Callable[..., Any], ...]) -> None:
        super().__init__()
        self.ctx = ctx
        self.answers = answers
        self._queue: deque[list[Any]] = deque()
        self._drainer: asyncio.Task[None] | None = None  # the loop keeps only weak references to tasks

    def frame_received(self, frame: list[Any]) -> None:
        if frame[1] == FORGET_RULES:
            from server.points.services import forget_rules

            forget_rules(self.ctx)
            return
        self._queue.append(frame)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def connection_lost(self, exc: Exception | None) -> None:
        self._queue.clear()  # the worker judges these itself now

    async def _drain(self) -> None:
        try:
            while self._queue:
                turn = [self._queue.popleft() for _ in range(min(TURN, len(self._queue)))]
                # Concurrent within a turn (one group commit for all of it), turns one after another.
                await asyncio.gather(*(self._answer(*frame) for frame in turn))
                self._flush()
        finally:
            self._drainer = None

    async def _answer(self, call_id: int, route: int, member_id: int, org_path: str, status: str, body: bytes) -> None:
        answered = None
        try:
            who = (services.Actor(member_id=member_id, method="self"), (member_id, org_path, status))
            answered = await self.answers[route](self.ctx, who, body)
        except Exception:  # noqa: BLE001 — the worker judges it again and answers the error in its usual shape
            log.debug("check-in writer: handing a request back", exc_info=True)
        self.send([call_id, 0, b""] if answered is None else [call_id, answered[0], answered[1]])


async def serve_writer(ctx: Any, address: str) -> asyncio.AbstractServer:
    """Listen for web workers on ``address`` and answer their check-ins with ``ctx``."""
    from server.checkins.fastlane import ANSWERS

    loop = asyncio.get_running_loop()
    return await loop.create_unix_server(lambda: _WriterSide(ctx, ANSWERS), socket_address(address))


def run_writer(settings: Settings, address: str, parent_pid: int | None) -> None:
    """``python -m server checkin-writer``: the writer process (started by ``serve``)."""
    import uvloop

    from server.core.context import open_context

    if parent_pid is not None and sys.platform.startswith("linux"):
        # Go when serve goes, even if it is killed outright (it stops us itself otherwise).
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:
            return

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with open_context(settings, serving=True) as ctx:
            server = await serve_writer(ctx, address)
            try:
                await stop.wait()
            finally:
                server.close()

    uvloop.run(main())


# --------------------------------------------------------------------------- the web worker's side


class _WorkerSide(_Framed):
    def __init__(self, client: WriterClient) -> None:
        super().__init__()
        self.client = client
        self.pending: dict[int, tuple[float, asyncio.Future[Any]]] = {}
        self.next_id = 0

    def frame_received(self, frame: list[Any]) -> None:
        call_id, status, payload = frame
        entry = self.pending.pop(call_id, None)
        if entry is not None and not entry[1].done():
            entry[1].set_result(None if status == 0 else (status, payload))

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(self)
        for _, future in self.pending.values():
            if not future.done():
                future.set_result(None)  # judged by the worker itself
        self.pending.clear()

    def call(self, route: int, member: tuple[int, str, str], body: bytes) -> asyncio.Future[Any]:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = (time.monotonic(), future)
        self.send([self.next_id, route, member[0], member[1], member[2], body])
        return future

    def expire(self, older_than: float) -> None:
        for call_id, (sent, future) in list(self.pending.items()):
            if sent < older_than:
                del self.pending[call_id]
                if not future.done():
                    future.set_result(None)


class WriterClient:
    """A web worker's line to the check-in writer; every failure means "judge it yourself"."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._side: _WorkerSide | None = None
        self._connecting: asyncio.Future[_WorkerSide | None] | None = None
        self._retry_at = 0.0
        self._sweeper: asyncio.TimerHandle | None = None
        self.answered = 0  # requests the writer answered (tests, benchmarks)

    async def call(self, route: int, member: tuple[int, str, str], body: bytes) -> tuple[int, bytes] | None:
        side = self._side or await self._connect()
        if side is None:
            return None
        answered = await side.call(route, member, body)
        if answered is not None:
            self.answered += 1
        return answered

    def forget_rules(self) -> None:
        if self._side is not None:
            self._side.send([0, FORGET_RULES, 0, "", "", b""])

    async def _connect(self) -> _WorkerSide | None:
        if self._connecting is not None:  # one attempt at a time; the others wait for it
            return await asyncio.shield(self._connecting)
        if time.monotonic() < self._retry_at:
            return None
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        side: _WorkerSide | None = None
        try:
            # Connected by hand: uvloop's create_unix_connection refuses an abstract address (EINVAL).
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, socket_address(self.address))
            except OSError:
                sock.close()
                raise
            _, side = await loop.create_unix_connection(lambda: _WorkerSide(self), sock=sock)
            self._side = side
            if self._sweeper is None:
                self._sweep()
        except OSError:
            self._retry_at = time.monotonic() + RETRY_AFTER
        finally:
            self._connecting.set_result(side)
            self._connecting = None
        return side

    def _sweep(self) -> None:
        """Once a second: calls unanswered for ``CALL_TIMEOUT`` are judged by the worker instead."""
        if self._side is not None:
            self._side.expire(time.monotonic() - CALL_TIMEOUT)
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    def _lost(self, side: _WorkerSide) -> None:
        if self._side is side:
            self._side = None
            self._retry_at = time.monotonic() + RETRY_AFTER / 10  # a restart takes a moment

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._side is not None and self._side.transport is not None:
            self._side.transport.close()
        self._side = None


# --------------------------------------------------------------------------- serve's side


class WriterProcess:
    """Started by ``serve`` before the web workers: runs the writer, restarts it if it exits."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "server", "checkin-writer", "--socket", self.address, "--parent", str(os.getpid())]
        return subprocess.Popen(command)

    def start(self, wait: float = 20.0) -> bool:
        """Start it and wait until it listens; False (and a warning) if it does not in time."""
        self.process = self._spawn()
        ready = self._wait_ready(wait)
        self._watcher = threading.Thread(target=self._watch, name="checkin-writer-watch", daemon=True)
        self._watcher.start()
        return ready

    def _wait_ready(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe, contextlib.suppress(OSError):
                probe.connect(socket_address(self.address))
                return True
            time.sleep(0.05)
        return False

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self.process
            if process is None or process.poll() is None:
                self._stopping.wait(0.5)
                continue
            if self._stopping.is_set():
                break
            log.warning("check-in writer exited (code %s); starting it again", process.returncode)
            print(f"提示：签到写入进程已退出（{process.returncode}），正在重启 / check-in writer exited, restarting",
                  file=sys.stderr, flush=True)
            self._stopping.wait(0.5)
            if not self._stopping.is_set():
                self.process = self._spawn()
                self.restarts += 1

    def stop(self, wait: float = 10.0) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(2)
