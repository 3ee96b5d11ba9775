"""Pieces of the kill -9 fault runs, shared by ``tests/test_faults.py`` and ``scripts/fault_kill.py``:
a live server to kill, a look at what is committed while it runs, and one round of "sync, kill mid-way".
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _bench_common import ROOT, Processes, SyncStreet, free_port, wait_http

SYNC = "/api/v1/checkins/sync"


class ServerProcess:
    """``python -m server serve`` on a free port, in its own process group, stopped (or killed) by its PID."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1, procs: Processes | None = None) -> None:
        self.env = {"REDIS_URL": "", **env}
        self.log = log
        self.workers = workers
        self.procs = procs or Processes()
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        self.proc = self.procs.start(
            [sys.executable, "-m", "server", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, log=self.log, cwd=ROOT,
        )
        wait_http(self.port, "/api/v1/health", self.proc, self.log)

    def kill9(self) -> None:
        """SIGKILL to the whole group (uvicorn's workers too): no shutdown, no finally, no flush."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.procs.procs.remove(self.proc)  # nothing left to stop
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None


class Peek:
    """Committed state, read through a connection of our own while the server runs."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.sqlite = database_url.startswith("sqlite:///")
        self.conn: Any = None

    async def __aenter__(self) -> "Peek":
        if self.sqlite:
            path = self.url.removeprefix("sqlite:///")
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        else:
            import asyncpg

            self.conn = await asyncpg.connect(self.url)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.sqlite:
            self.conn.close()
        else:
            await self.conn.close()

    async def members_with_attempts(self, member_ids: list[int]) -> set[int]:
        """Members with a committed batch (a batch is one write unit: all of it or nothing)."""
        marks = ", ".join(str(int(m)) for m in member_ids)
        sql = f"SELECT DISTINCT member_id FROM checkin_attempts WHERE member_id IN ({marks})"
        if self.sqlite:
            return {r[0] for r in self.conn.execute(sql)}
        return {r[0] for r in await self.conn.fetch(sql)}


async def post_batch(client: Any, street: SyncStreet, key: tuple[int, int]) -> Any:
    member_id, part = key
    return await client.post(SYNC, content=street.body(member_id, part), headers=street.headers(member_id))


def results_by_uuid(response: Any) -> dict[str, dict[str, Any]]:
    return {r["client_uuid"]: r for r in response.json()["results"]}


@dataclass
class KillRound:
    trigger: str
    new: int  # batches never sent before this round
    committed: int = 0  # of those, committed when the server died
    cut: int = 0  # requests in flight at the kill (the client saw the connection drop)
    answered: int = 0  # 200s received before the kill
    errors: list[str] = field(default_factory=list)  # anything but 200 or a dropped connection

    @property
    def mid_way(self) -> bool:
        return 0 < self.committed < self.new and self.cut > 0


async def kill_round(server: ServerProcess, street: SyncStreet, peek: Peek, new: list[int], clients: int,
                     rng: random.Random, trigger: str = "commits", answers: dict[str, dict[str, Any]] | None = None
                     ) -> KillRound:
    """Start the server; ``clients`` phones sync the new members' batches (part 0) one after another,
    mixed with replays of every earlier batch of ``street``; kill -9 the server group — ``commits``:
    once 1–3 new batches are committed (+ 0–20 ms), ``delay``: 0–0.5 s after the first request.
    200 results go into ``answers``."""
    import httpx

    answers = {} if answers is None else answers
    server.start()
    for member_id in new:
        street.batch(member_id)
    work = list(street.batches)
    rng.shuffle(work)
    result = KillRound(trigger=trigger, new=len(new))
    in_flight = 0

    async def phone(client: httpx.AsyncClient) -> None:
        nonlocal in_flight
        while work:
            key = work.pop()
            in_flight += 1
            try:
                reply = await post_batch(client, street, key)
            except httpx.ConnectError:
                return  # sent after the kill
            except httpx.TransportError:
                result.cut += 1  # in flight when the server died
                return
            finally:
                in_flight -= 1
            if reply.status_code != 200:
                result.errors.append(f"{key}: {reply.status_code} {reply.text[:300]}")
                continue
            result.answered += 1
            answers.update(results_by_uuid(reply))

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        phones = [asyncio.create_task(phone(client)) for _ in range(clients)]
        loop = asyncio.get_running_loop()
        if trigger == "commits":
            wanted = rng.randint(1, max(1, min(3, len(new) - 1)))
            deadline = loop.time() + 60
            while len(await peek.members_with_attempts(new)) < wanted and loop.time() < deadline:
                await asyncio.sleep(0.001)
            await asyncio.sleep(rng.uniform(0, 0.02))
        else:
            await asyncio.sleep(rng.uniform(0, 0.5))
        # Not between a reply and the phones' next requests: batches committed in one group are
        # answered together, and a kill right then would find nothing in flight.
        deadline = loop.time() + 5
        while in_flight == 0 and work and loop.time() < deadline:
            await asyncio.sleep(0.001)
        server.kill9()
        await asyncio.gather(*phones)
    result.committed = len(await peek.members_with_attempts(new))
    return result
