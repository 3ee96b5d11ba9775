#!/usr/bin/env python3
"""PostgreSQL crashes and comes back while phones keep syncing: 503 meanwhile, exactly once after.

What happens
    A throw-away PostgreSQL cluster of our own (``initdb`` + ``postgres`` from
    ``/usr/lib/postgresql/15/bin``, or ``--pg-bin``) on a free 127.0.0.1 port in a temp dir, no unix
    socket — the shared cluster on 5432 is never touched. ``python -m server serve --workers 2``
    against it. ``--clients`` phones sync offline batches of ``--batch`` items (every item a new,
    accepted check-in) one after another; ``--restarts`` times PostgreSQL is crashed — ``--mode kill``:
    SIGKILL to the postmaster's whole process group (every backend at once, like the OOM killer or a
    power cut of the service); ``--mode immediate``: SIGQUIT to the postmaster, which is what
    ``pg_ctl restart -m immediate`` sends — left down for ``--down`` seconds, then started again (WAL
    crash recovery). A prober reads ``/health`` and ``/me/points`` every 100 ms throughout.

What must hold
    * While PostgreSQL is down, and for requests it took down with it, the server answers 503
      ``database_unavailable`` with a Chinese detail — never a 500, never a dropped connection.
    * It recovers by itself: syncs and reads answer 200 again soon after PostgreSQL is back
      (time to the first 200 is printed), without a server restart.
    * A phone keeps a batch until it got a 200; at the end every batch ever sent is replayed once
      more (a batch whose COMMIT reached PostgreSQL just before the crash was answered 503 but is
      stored: its replay gets the stored results). Then every item is exactly once in check-ins,
      attempts and ledger, the tally equals the ledger (``_bench_common.exactly_once_problems``),
      and every 200 a phone got earlier matches the replay.

Exit status 0 only if all of that holds. Every process started here (PostgreSQL, the server) runs
in its own process group and is stopped by its PID, also on Ctrl-C; the temp dir is removed.

    .venv/bin/python scripts/fault_pg_restart.py                       # ~40 s
    .venv/bin/python scripts/fault_pg_restart.py --mode immediate --restarts 3 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402
    PG_BIN,
    BenchDB,
    Processes,
    SetupError,
    SyncStreet,
    ThrowawayPostgres,
    build_sync_street,
    ensure_venv,
    exactly_once_problems,
    free_port,
    install_sigterm_handler,
    migrate,
    percentile,
    print_table,
    wait_http,
)

ensure_venv()

SYNC = "/api/v1/checkins/sync"


# --------------------------------------------------------------------------- load


@dataclass
class Outage:
    crashed_at: float
    back_at: float = float("nan")
    recovery_s: float = float("nan")  # PostgreSQL's own start (WAL recovery) until it took connections
    first_sync_ok: float = float("nan")
    first_read_ok: float = float("nan")


@dataclass
class Run:
    street: SyncStreet
    batch: int
    keys: deque[tuple[int, int]]
    t0: float = field(default_factory=time.monotonic)
    retry: deque[tuple[int, int]] = field(default_factory=deque)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    sync_ok: list[float] = field(default_factory=list)  # monotonic times of 200 syncs
    read_ok: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    stop: bool = False

    def now(self) -> float:
        return time.monotonic() - self.t0

    def error(self, text: str) -> None:
        self.errors.append(f"t={self.now():.2f}s {text}")


def _unavailable(status: int, body: bytes) -> bool:
    """The answer the server must give while the database is away."""
    import json

    if status != 503:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    detail = data.get("detail", "")
    return data.get("code") == "database_unavailable" and any("\u4e00" <= ch <= "\u9fff" for ch in detail)


async def phone(run: Run, client: Any) -> None:
    import httpx

    while not run.stop:
        if run.retry and (not run.keys or random.random() < 0.3):
            key = run.retry.popleft()
        elif run.keys:
            key = run.keys.popleft()
        else:
            await asyncio.sleep(0.05)
            continue
        member_id, part = key
        started = time.monotonic()
        try:
            reply = await client.post(SYNC, content=run.street.body(member_id, part), headers=run.street.headers(member_id))
        except httpx.TransportError as exc:
            run.statuses["sync transport error"] += 1
            run.error(f"sync {key}: {type(exc).__name__}: {exc}")
            run.retry.append(key)
            await asyncio.sleep(0.2)
            continue
        run.statuses[f"sync {reply.status_code}"] += 1
        if reply.status_code == 200:
            run.latencies.append(time.monotonic() - started)
            run.sync_ok.append(time.monotonic())
            run.answers.update({r["client_uuid"]: r for r in reply.json()["results"]})
            continue
        if not _unavailable(reply.status_code, reply.content):
            run.error(f"sync {key}: {reply.status_code} {reply.text[:300]}")
        run.retry.append(key)  # the phone keeps the batch and tries again later
        await asyncio.sleep(0.2)


async def prober(run: Run, client: Any, member_id: int) -> None:
    import httpx

    headers = run.street.headers(member_id)
    while not run.stop:
        for path, auth in (("/api/v1/health", None), ("/api/v1/me/points", headers)):
            try:
                reply = await client.get(path, headers=auth)
            except httpx.TransportError as exc:
                run.statuses["read transport error"] += 1
                run.error(f"GET {path}: {type(exc).__name__}: {exc}")
                continue
            run.statuses[f"read {reply.status_code}"] += 1
            if reply.status_code == 200:
                if path != "/api/v1/health":
                    run.read_ok.append(time.monotonic())
            elif path == "/api/v1/health":
                if reply.status_code != 503 or reply.json().get("database") != "unavailable":
                    run.error(f"GET {path}: {reply.status_code} {reply.text[:300]}")
            elif not _unavailable(reply.status_code, reply.content):
                run.error(f"GET {path}: {reply.status_code} {reply.text[:300]}")
        await asyncio.sleep(0.1)


async def load(run: Run, cluster: ThrowawayPostgres, port: int, args: argparse.Namespace) -> None:
    import httpx

    limits = httpx.Limits(max_connections=args.clients + 4)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as client:
        tasks = [asyncio.create_task(phone(run, client)) for _ in range(args.clients)]
        tasks.append(asyncio.create_task(prober(run, client, run.street.members[0])))
        phase = args.seconds / (args.restarts + 1)
        for n in range(args.restarts):
            await asyncio.sleep(phase * random.uniform(0.7, 1.0))
            outage = Outage(crashed_at=time.monotonic())
            run.outages.append(outage)
            print(f"  t={run.now():5.1f}s crash #{n + 1} ({args.mode}); down for {args.down:g}s", flush=True)
            await asyncio.to_thread(cluster.crash, args.mode)
            await asyncio.sleep(args.down)
            outage.recovery_s = await asyncio.to_thread(cluster.start)
            outage.back_at = time.monotonic()
            print(f"  t={run.now():5.1f}s PostgreSQL accepts connections again ({outage.recovery_s:.1f}s to start)",
                  flush=True)
        await asyncio.sleep(phase)
        run.stop = True
        await asyncio.gather(*tasks)
    ends = [o.crashed_at for o in run.outages[1:]] + [time.monotonic()]
    for outage, end in zip(run.outages, ends):
        outage.first_sync_ok = next((t - outage.back_at for t in run.sync_ok if outage.back_at <= t < end), float("nan"))
        outage.first_read_ok = next((t - outage.back_at for t in run.read_ok if outage.back_at <= t < end), float("nan"))


async def replay_all(run: Run, port: int, clients: int) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every batch ever sent, once more: all 200; returns the results and what went wrong."""
    import httpx

    keys = deque(run.street.batches)
    final: dict[str, dict[str, Any]] = {}
    problems: list[str] = []

    async def one(client: httpx.AsyncClient) -> None:
        while keys:
            member_id, part = key = keys.popleft()
            reply = await client.post(SYNC, content=run.street.body(member_id, part), headers=run.street.headers(member_id))
            if reply.status_code != 200:
                problems.append(f"replay {key}: {reply.status_code} {reply.text[:300]}")
                continue
            final.update({r["client_uuid"]: r for r in reply.json()["results"]})

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        await asyncio.gather(*(one(client) for _ in range(clients)))
    changed = [u for u, r in run.answers.items() if final.get(u) != r]
    if changed:
        problems.append(f"{len(changed)} results answered 200 during the load differ on replay, e.g. {changed[0]}")
    return final, problems


async def check(db: BenchDB, street: SyncStreet, final: dict[str, dict[str, Any]]) -> list[str]:
    from server.core.db import create_database

    database = create_database(db.settings())
    await database.start()
    try:
        return await exactly_once_problems(database, street, final)
    finally:
        await database.close()


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="load time, crashes included (default 15)")
    parser.add_argument("--restarts", type=int, default=2, help="PostgreSQL crashes during the load (default 2)")
    parser.add_argument("--down", type=float, default=2.0, help="seconds PostgreSQL stays down each time (default 2)")
    parser.add_argument("--mode", choices=["kill", "immediate"], default="kill",
                        help="kill: SIGKILL to the postmaster's process group; immediate: pg_ctl -m immediate (SIGQUIT)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--clients", type=int, default=8, help="phones syncing at once (default 8)")
    parser.add_argument("--batch", type=int, default=100, help="items per sync (default 100, at most 500)")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--activities", type=int, default=500)
    parser.add_argument("--pg-bin", type=Path, default=PG_BIN, help=f"PostgreSQL programs (default {PG_BIN})")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data) for a look afterwards")
    args = parser.parse_args()
    if not 1 <= args.batch <= 500 or args.activities < args.batch:
        parser.error("need 1 <= --batch <= 500 and --activities >= --batch")

    install_sigterm_handler()
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="hongyi-fault-pg-"))
    failed = False
    try:
        t_setup = time.monotonic()
        cluster = ThrowawayPostgres(procs, workdir, args.pg_bin)
        cluster.init()
        cluster.start()
        cluster.create_database("hongyi")
        db = BenchDB(engine="postgres", url=cluster.url("hongyi"), tmpdir=workdir, key_file=workdir / "keys.json")
        migrate(db)

        async def prepare() -> SyncStreet:
            from server.core.context import open_context

            async with open_context(db.settings()) as ctx:
                return await build_sync_street(ctx, args.members, args.activities)

        street = asyncio.run(prepare())
        parts = args.activities // args.batch
        keys = deque((m, p) for p in range(parts) for m in street.members)
        for member_id, part in keys:  # made up front: the load loop only sends
            street.batch(member_id, part, args.batch)
        port = free_port()
        log = workdir / "server.log"
        server = procs.start(
            [sys.executable, "-m", "server", "serve", "--port", str(port), "--workers", str(args.workers)],
            env={**db.env, "REDIS_URL": ""}, log=log,
        )
        wait_http(port, "/api/v1/health", server, log)
        print(f"setup {time.monotonic() - t_setup:.1f}s: own PostgreSQL on 127.0.0.1:{cluster.port}, server with"
              f" {args.workers} workers on :{port}, {len(keys)} batches of {args.batch} ready", flush=True)

        run = Run(street=street, batch=args.batch, keys=keys)
        asyncio.run(load(run, cluster, port, args))
        unsent = {*run.keys}
        for key in unsent:  # never sent: not part of the check
            street.batches.pop(key, None)
        print(f"  t={run.now():5.1f}s load stopped; replaying {len(street.batches)} batches ...", flush=True)
        final, replay_problems = asyncio.run(replay_all(run, port, args.clients))
        procs.stop(server)
        problems = asyncio.run(check(db, street, final))
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(
        ["crash", "mode", "down s", "PG start s", "first 200 sync after", "first 200 read after"],
        [[n + 1, args.mode, f"{args.down:g}", f"{o.recovery_s:.2f}", f"{o.first_sync_ok:.2f} s", f"{o.first_read_ok:.2f} s"]
         for n, o in enumerate(run.outages)],
    )
    lat = sorted(run.latencies)
    print(f"\nanswers: {dict(sorted(run.statuses.items()))}")
    print(f"200 syncs: {len(lat)}, p50 {percentile(lat, 50) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms")
    items = sum(len(v) for v in street.batches.values())
    checks = [
        (f"every answer was 200 or 503 database_unavailable ({len(run.errors)} others)", not run.errors),
        ("the server recovered by itself after every crash (a 200 sync and a 200 read)",
         all(o.first_sync_ok == o.first_sync_ok and o.first_read_ok == o.first_read_ok for o in run.outages)),
        (f"503 answers seen while PostgreSQL was down ({run.statuses['sync 503'] + run.statuses['read 503']})",
         run.statuses["sync 503"] + run.statuses["read 503"] > 0),
        (f"replay of {len(street.batches)} batches: all 200, earlier 200s unchanged", not replay_problems),
        (f"exactly once: {items} items in check-ins, attempts, ledger; tally = ledger", not problems),
    ]
    for text, ok in checks:
        print(f"  {'OK  ' if ok else 'FAIL'} {text}")
        failed |= not ok
    for line in (run.errors[:10] + replay_problems[:5] + problems):
        print(f"    {line}")
    if len(run.errors) > 10:
        print(f"    … {len(run.errors) - 10} more")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
