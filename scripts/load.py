#!/usr/bin/env python3
"""Mixed traffic against a real server: 0 errors, latency per kind, and no memory growth.

What is sent
    ``--seconds`` (default 60) at ``--concurrency`` (default 64) keep-alive connections, after a
    ``--warmup`` (default 10 s) of the same mix, against ``python -m server serve``:

    ========== ====== ==================================================================
    kind       share  requests
    ========== ====== ==================================================================
    checkin     25 %  ``POST /checkins`` — a new member × activity pair each time (accepted)
    sync         5 %  ``POST /checkins/sync`` — 50 new items of one member
    me          10 %  ``GET /me``
    points      10 %  ``GET /me/points`` (year, or a quarter)
    records     10 %  ``GET /me/checkins?limit=20``
    board       20 %  ``GET /points/leaderboard`` (street or own branch; year, quarter or
                      month) and ``GET /points/branches`` (赛马)
    staff       20 %  a station's staff: ``/stations/{id}/live``, ``/checkins/review``,
                      ``/activities/{id}/attendance`` (a branch's meeting), ``/members?q=``
    ========== ====== ==================================================================

    (``--mix checkin=25,sync=5,…`` changes the shares.) Members are taken round-robin from
    ``--members`` (default 3000, 3 communities × 4 branches), so the per-user principal cache
    misses as it would with a crowd. Logins are not in the mix: argon2 is slow on purpose, and the
    login rate limit (per IP, shared through Redis) would answer 429 to one client machine.

Engines
    SQLite (``--sqlite-workers``, default 1) and PostgreSQL + Redis (``--pg-workers``, default 2;
    ``REDIS_URL=redis://127.0.0.1:6379/<n>`` with the first empty database number from 14 down to 1,
    as in production; the app uses Redis only for login rate limits, so it is configured, not loaded).
    Each gets a temp SQLite file / a fresh PostgreSQL database on 127.0.0.1:5432 that is dropped at
    the end. The load generator is a raw asyncio HTTP/1.1 client on uvloop (no per-request parsing
    beyond the status line and Content-Length).

What must hold (exit status 1 otherwise)
    * no errors: every answer 200, no socket error;
    * the server's memory (RSS summed over the server's process group: uvicorn master and
      workers, and on SQLite the check-in writer) at the end is within ``--rss-tolerance`` (default 10 %) or ``--rss-slack`` MiB
      (default 24), whichever is larger, of what it was after the warm-up — on SQLite plus what its
      page caches may hold of the pages the run added: twice the database's growth (the writer and
      the reader connection each cache up to 64 MiB), at most 128 MiB. A leak of a few KiB per
      request fails (60 s × ~1000 req/s × 1 KiB ≈ 60 MiB). PostgreSQL's backends are not in the
      server's process group;
    * afterwards (server stopped): one attempt, one ledger entry per check-in, root tally = ledger.

Printed: per kind requests, req/s, p50/p99/max ms, errors; RSS at start, after the warm-up and at
the end (and the peak sampled every second); the share of the CPUs other processes used meanwhile
(the machine is shared: > a few % makes the figures low).

    .venv/bin/python scripts/load.py --seconds 10 --warmup 3          # a quick look, both engines
    .venv/bin/python scripts/load.py --db postgres                    # the full 60 s on PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402
    BenchDB,
    OtherLoad,
    Processes,
    SetupError,
    activity_qr,
    build_org_tree,
    ensure_venv,
    free_port,
    group_rss,
    insert_members,
    insert_open_activities,
    insert_station,
    install_sigterm_handler,
    percentile,
    print_table,
    temp_database,
    wait_http,
)

ensure_venv()

DEFAULT_MIX = {"checkin": 25, "sync": 5, "me": 10, "points": 10, "records": 10, "board": 20, "staff": 20}
SYNC_ITEMS = 50
MiB = 2**20


# --------------------------------------------------------------------------- data and requests


@dataclass
class Crowd:
    root_id: int
    station_id: int
    members: list[tuple[str, int]]  # (bearer, branch org id)
    staff: list[str]  # bearers of the station's staff
    checkin_qrs: list[str]  # activities for single check-ins
    sync_qrs: list[str]  # activities for syncs, in blocks of SYNC_ITEMS
    branch_activities: list[int]  # small meetings whose attendance staff read


async def build_crowd(db: BenchDB, members: int, checkin_activities: int, sync_blocks: int) -> Crowd:
    from server.core.timeutil import utcnow
    from server.core.context import open_context

    async with open_context(db.settings()) as ctx:
        tree = await build_org_tree(ctx, communities=3, branches_per_community=4)
        people = await insert_members(ctx, tree.branches, members)
        # The staff's station holds a day's worth of activities (the live feed lists them); the
        # activities that syncs name are at another station.
        station = await insert_station(ctx, tree.root_id, tree.root_path)
        acts = await insert_open_activities(ctx, checkin_activities, station, tree.root_id, tree.root_path)
        meetings = []
        for org_id, path in tree.branches[:4]:
            meetings += await insert_open_activities(ctx, 1, station, org_id, path)
        other = await insert_station(ctx, tree.root_id, tree.root_path)
        acts += await insert_open_activities(ctx, sync_blocks * SYNC_ITEMS, other, tree.root_id, tree.root_path)
        staff = []
        async with ctx.db.transaction():
            for i in range(8):
                user_id = await ctx.db.fetchval(
                    "INSERT INTO users (phone, display_name, password_hash, member_id, is_active, created_at)"
                    " VALUES ($1, $2, NULL, NULL, $3, $4) RETURNING id",
                    f"137{i:08d}", f"服务站工作人员{i + 1}", True, utcnow(),
                )
                await ctx.db.execute(
                    "INSERT INTO role_grants (user_id, role, org_id, station_id, created_at) VALUES ($1, 'staff', NULL, $2, $3)",
                    user_id, station, utcnow(),
                )
                staff.append(int(user_id))
        qrs = [activity_qr(ctx, a, station) for a in acts[:checkin_activities]]
        qrs += [activity_qr(ctx, a, other) for a in acts[checkin_activities:]]
        token = ctx.tokens.access_token
        return Crowd(
            root_id=tree.root_id, station_id=station,
            members=[(token(int(m.user_id or 0), 240)[0], m.org_id) for m in people],
            staff=[token(u, 240)[0] for u in staff],
            checkin_qrs=qrs[:checkin_activities], sync_qrs=qrs[checkin_activities:],
            branch_activities=[m.activity_id for m in meetings],
        )


class Requests:
    """Raw HTTP/1.1 requests per kind, made on demand (check-ins and syncs never repeat)."""

    def __init__(self, crowd: Crowd, port: int, tz: Any) -> None:
        self.crowd = crowd
        self.host = f"127.0.0.1:{port}".encode()
        now = time.time()
        from datetime import datetime

        self.stamp = datetime.fromtimestamp(now - 30, tz).replace(microsecond=0).isoformat()
        self.sync_start = datetime.fromtimestamp(now - 3600, tz).replace(microsecond=0)
        self.year = datetime.fromtimestamp(now, tz).year
        self.quarter = (datetime.fromtimestamp(now, tz).month - 1) // 3 + 1
        self.month = datetime.fromtimestamp(now, tz).month
        n = len(crowd.members)
        # member varies fastest: consecutive check-ins hit different members
        self._checkins = ((k % n, k // n) for k in itertools.count())
        self._syncs = ((k % n, k // n) for k in itertools.count())
        self._member = itertools.cycle(range(n))
        self._staff = itertools.cycle(range(len(crowd.staff)))
        self._variant = itertools.count()
        self.wrapped = Counter[str]()
        self.makers: dict[str, Callable[[], bytes]] = {
            "checkin": self.checkin, "sync": self.sync, "me": self.me, "points": self.points, "records": self.records,
            "board": self.board, "staff": self.staff,
        }

    def _get(self, path: str, bearer: str) -> bytes:
        return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + self.host + b"\r\nAuthorization: Bearer "
                + bearer.encode() + b"\r\n\r\n")

    def _post(self, path: str, bearer: str, body: bytes) -> bytes:
        return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self.host + b"\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + bearer.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\n\r\n" + body)

    def checkin(self) -> bytes:
        member, activity = next(self._checkins)
        if activity >= len(self.crowd.checkin_qrs):
            self.wrapped["checkin"] += 1  # a replay: still 200, but not a new check-in
            activity %= len(self.crowd.checkin_qrs)
        body = {"client_uuid": uuid.uuid5(uuid.NAMESPACE_OID, f"c{member}:{activity}").hex,
                "token": self.crowd.checkin_qrs[activity], "scanned_at": self.stamp, "kind": "in"}
        return self._post("/api/v1/checkins", self.crowd.members[member][0], json.dumps(body).encode())

    def sync(self) -> bytes:
        member, block = next(self._syncs)
        blocks = len(self.crowd.sync_qrs) // SYNC_ITEMS
        if block >= blocks:
            self.wrapped["sync"] += 1
            block %= blocks
        qrs = self.crowd.sync_qrs[block * SYNC_ITEMS:(block + 1) * SYNC_ITEMS]
        items = [{"client_uuid": uuid.uuid5(uuid.NAMESPACE_OID, f"s{member}:{block}:{i}").hex, "token": qr,
                  "scanned_at": (self.sync_start + timedelta(seconds=20 * i)).isoformat()} for i, qr in enumerate(qrs)]
        return self._post("/api/v1/checkins/sync", self.crowd.members[member][0], json.dumps({"items": items}).encode())

    def me(self) -> bytes:
        return self._get("/api/v1/me", self.crowd.members[next(self._member)][0])

    def points(self) -> bytes:
        period = f"&quarter={self.quarter}" if next(self._variant) % 3 == 0 else ""
        return self._get(f"/api/v1/me/points?year={self.year}{period}", self.crowd.members[next(self._member)][0])

    def records(self) -> bytes:
        return self._get("/api/v1/me/checkins?limit=20", self.crowd.members[next(self._member)][0])

    def board(self) -> bytes:
        bearer, branch = self.crowd.members[next(self._member)]
        root = self.crowd.root_id
        paths = [
            f"/api/v1/points/leaderboard?org_id={root}&year={self.year}&limit=50",
            f"/api/v1/points/leaderboard?org_id={branch}&year={self.year}&limit=50",
            f"/api/v1/points/leaderboard?org_id={root}&year={self.year}&quarter={self.quarter}&limit=50",
            f"/api/v1/points/leaderboard?org_id={branch}&year={self.year}&month={self.month}&limit=50",
            f"/api/v1/points/branches?org_id={root}&year={self.year}",
            f"/api/v1/points/branches?org_id={root}&year={self.year}&quarter={self.quarter}",
        ]
        return self._get(paths[next(self._variant) % len(paths)], bearer)

    def staff(self) -> bytes:
        crowd = self.crowd
        bearer = crowd.staff[next(self._staff)]
        k = next(self._variant)
        paths = [
            f"/api/v1/stations/{crowd.station_id}/live",
            f"/api/v1/checkins/review?station_id={crowd.station_id}&limit=50",
            f"/api/v1/activities/{crowd.branch_activities[k % len(crowd.branch_activities)]}/attendance",
            "/api/v1/members?q=%E7%8E%8B&limit=20",  # 王
        ]
        return self._get(paths[k % len(paths)], bearer)


# --------------------------------------------------------------------------- load generator


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    duration: float = 0.0

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{kind}: {what}")


def schedule(mix: dict[str, int], seed: int = 7) -> Iterator[str]:
    """An endless, shuffled sequence of kinds in the mix's proportions."""
    pattern = [kind for kind, share in mix.items() for _ in range(share)]
    random.Random(seed).shuffle(pattern)
    return itertools.cycle(pattern)


async def run_load(port: int, requests: Requests, kinds: Iterator[str], seconds: float, concurrency: int,
                   rss: Callable[[], int] | None = None) -> tuple[Tally, int]:
    """Keep-alive connections; at the deadline no new request starts, those in flight finish.
    Returns the tally and the peak RSS sampled every second (0 without ``rss``)."""
    tally = Tally(latencies={k: [] for k in requests.makers})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    perf = time.perf_counter
    peak = 0

    async def client() -> None:
        reader = writer = None
        while loop.time() < deadline:
            kind = next(kinds)
            raw = requests.makers[kind]()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                started = perf()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                marker = lower.find(b"\r\ncontent-length:")
                if marker < 0:
                    raise ConnectionError("response without content-length")
                end = head.find(b"\r\n", marker + 2)
                body = await reader.readexactly(int(head[marker + 17:end]))
                tally.latencies[kind].append(perf() - started)
                status = int(head[9:12])
                if status != 200:
                    tally.error(kind, f"{status} {raw.split(b' ', 2)[1].decode()} {body[:200].decode(errors='replace')}")
                if b"\r\nconnection: close" in lower:
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError) as exc:
                tally.error(kind, f"socket: {type(exc).__name__} {exc}")
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    async def sampler() -> None:
        nonlocal peak
        while loop.time() < deadline:
            peak = max(peak, rss() if rss else 0)
            await asyncio.sleep(1.0)

    started = perf()
    await asyncio.gather(sampler(), *(client() for _ in range(concurrency)))
    tally.duration = perf() - started
    return tally, peak


def run_async(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# --------------------------------------------------------------------------- checks


async def database_problems(db: BenchDB, root_id: int) -> tuple[str, list[str]]:
    from server.core.db import create_database

    database = create_database(db.settings())
    await database.start()
    try:
        q = database.fetchval
        checkins = int(await q("SELECT COUNT(*) FROM checkins"))
        accepted = int(await q("SELECT COUNT(*) FROM checkins WHERE status = 'accepted'"))
        attempts = int(await q("SELECT COUNT(*) FROM checkin_attempts"))
        with_row = int(await q("SELECT COUNT(DISTINCT checkin_id) FROM checkin_attempts WHERE status = 'accepted'"))
        ledger = int(await q("SELECT COUNT(*) FROM points_ledger WHERE source_type = 'checkin'"))
        distinct = int(await q("SELECT COUNT(DISTINCT source_id) FROM points_ledger WHERE source_type = 'checkin'"))
        ledger_sum = float(await q("SELECT COALESCE(SUM(delta), 0) FROM points_ledger"))
        tally_sum = float(await q("SELECT COALESCE(SUM(earned), 0) FROM points_tally WHERE org_id = $1", root_id))
    finally:
        await database.close()
    problems = []
    if not checkins == accepted == attempts == with_row:
        problems.append(f"check-ins {checkins} (accepted {accepted}), attempts {attempts} (pointing at {with_row})")
    if not ledger == distinct == checkins:
        problems.append(f"ledger {ledger} entries for {distinct} check-ins of {checkins}")
    if abs(ledger_sum - tally_sum) > 1e-6:
        problems.append(f"root tally Σ {tally_sum:g} != ledger Σ {ledger_sum:g}")
    return f"{checkins:,} check-ins, {attempts:,} attempts, {ledger:,} ledger entries, tally Σ {tally_sum:,.0f}", problems


def sqlite_bytes(db: BenchDB) -> int:
    """The SQLite database's logical size (pages in use, WAL included); 0 for PostgreSQL."""
    if db.engine != "sqlite":
        return 0
    import sqlite3

    conn = sqlite3.connect(f"file:{db.sqlite_path}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0]) * int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def free_redis_db() -> str:
    import redis

    for n in range(14, 0, -1):
        client = redis.Redis(host="127.0.0.1", port=6379, db=n, socket_timeout=2)
        try:
            if client.dbsize() == 0:
                return f"redis://127.0.0.1:6379/{n}"
        except redis.RedisError as exc:
            raise SetupError(f"Redis not usable at 127.0.0.1:6379: {exc}") from exc
        finally:
            client.close()
    raise SetupError("no empty Redis database between 1 and 14")


# --------------------------------------------------------------------------- main


@dataclass
class Result:
    engine: str
    workers: int
    tally: Tally
    rss_start: int
    rss_warm: int
    rss_end: int
    rss_peak: int
    db_growth: int  # SQLite: bytes the database grew during the measured run
    other: float
    wrapped: Counter[str]
    db_summary: str
    db_problems: list[str]
    redis: str | None


def load_engine(engine: str, args: argparse.Namespace, mix: dict[str, int], procs: Processes) -> Result:
    workers = args.sqlite_workers if engine == "sqlite" else args.pg_workers
    with temp_database(engine, "load") as db:
        print(f"[{engine}] building data: {args.members} members, {args.activities} + {args.sync_blocks} × {SYNC_ITEMS}"
              " open activities ...", flush=True)
        crowd = run_async(build_crowd(db, args.members, args.activities, args.sync_blocks))
        redis_url = free_redis_db() if engine == "postgres" and not args.no_redis else None
        port = free_port()
        log = db.tmpdir / "server.log"
        proc = procs.start(
            [sys.executable, "-m", "server", "serve", "--port", str(port), "--workers", str(workers)],
            env={**db.env, "REDIS_URL": redis_url or ""}, log=log,
        )
        try:
            wait_http(port, "/api/v1/health", proc, log)
            time.sleep(1.0)  # workers settle
            rss = lambda: group_rss(proc.pid)  # noqa: E731
            rss_start = rss()
            requests = Requests(crowd, port, db.settings().tz)
            kinds = schedule(mix)
            print(f"[{engine}] warm-up {args.warmup:g}s, then {args.seconds:g}s at concurrency {args.concurrency}"
                  f" ({workers} worker(s){', ' + redis_url if redis_url else ''}) ...", flush=True)
            if args.warmup > 0:
                warm, _ = run_async(run_load(port, requests, kinds, args.warmup, args.concurrency))
                if sum(warm.errors.values()):
                    print(f"[{engine}] warm-up errors: {dict(warm.errors)}; e.g. {warm.samples[:3]}", flush=True)
            rss_warm, size_warm = rss(), sqlite_bytes(db)
            with OtherLoad(procs, db.pg_name) as other:
                tally, peak = run_async(run_load(port, requests, kinds, args.seconds, args.concurrency, rss))
            time.sleep(0.5)
            rss_end, size_end = rss(), sqlite_bytes(db)
        finally:
            procs.stop(proc)
        summary, problems = run_async(database_problems(db, crowd.root_id))
        if sum(tally.errors.values()) or problems:
            tail = log.read_text(errors="replace")[-3000:]
            if "Traceback" in tail or "ERROR" in tail:
                print(f"[{engine}] server log tail:\n{tail}")
    return Result(engine, workers, tally, rss_start, rss_warm, rss_end, max(peak, rss_end), size_end - size_warm,
                  other.share, requests.wrapped, summary, problems, redis_url)


def report(r: Result, args: argparse.Namespace) -> bool:
    t = r.tally
    total = sum(len(v) for v in t.latencies.values())
    rows = []
    for kind, values in [*t.latencies.items(), ("all", [x for v in t.latencies.values() for x in v])]:
        values = sorted(values)
        errors = sum(t.errors.values()) if kind == "all" else t.errors[kind]
        rows.append([kind, len(values), f"{len(values) / t.duration:,.0f}", f"{percentile(values, 50) * 1000:.1f}",
                     f"{percentile(values, 99) * 1000:.1f}", f"{(values[-1] if values else float('nan')) * 1000:.0f}",
                     errors])
    print(f"\n[{r.engine}] {r.workers} worker(s), {args.seconds:g}s at concurrency {args.concurrency}:"
          f" {total:,} requests, {total / t.duration:,.0f} req/s; other processes used {r.other:.0%} of the CPUs")
    print_table(["kind", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors"], rows)
    cache = min(2 * max(r.db_growth, 0), 128 * MiB)
    allowed = max(r.rss_warm * args.rss_tolerance, args.rss_slack * MiB) + cache
    growth = r.rss_end - r.rss_warm
    checks = [
        (f"errors: {sum(t.errors.values())}", not t.errors),
        (f"server RSS: start {r.rss_start / MiB:.0f} MiB, after warm-up {r.rss_warm / MiB:.0f} MiB, end"
         f" {r.rss_end / MiB:.0f} MiB (peak {r.rss_peak / MiB:.0f}); growth {growth / MiB:+.1f} MiB, allowed"
         f" {allowed / MiB:.0f} MiB" + (f" (incl. {cache / MiB:.0f} for SQLite's page caches: the file grew"
                                        f" {r.db_growth / MiB:.0f} MiB)" if r.engine == "sqlite" else ""),
         growth <= allowed),
        (f"database: {r.db_summary}", not r.db_problems),
    ]
    ok = True
    for text, good in checks:
        print(f"  {'OK  ' if good else 'FAIL'} {text}")
        ok &= good
    for line in t.samples + r.db_problems:
        print(f"    {line}")
    if r.wrapped:
        print(f"  note: bodies reused (replays, still 200): {dict(r.wrapped)} — raise --members/--activities")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured load (default 60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="warm-up before the memory baseline (default 10)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sqlite-workers", type=int, default=1)
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument("--no-redis", action="store_true", help="PostgreSQL without REDIS_URL")
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--activities", type=int, default=20,
                        help="open activities at the staff's station for single check-ins (default 20)")
    parser.add_argument("--sync-blocks", type=int, default=3,
                        help=f"blocks of {SYNC_ITEMS} activities (another station) for syncs (default 3)")
    parser.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()),
                        help="shares per kind (default %(default)s)")
    parser.add_argument("--rss-tolerance", type=float, default=0.10, help="allowed RSS growth after the warm-up, as a"
                        " fraction (default 0.10)")
    parser.add_argument("--rss-slack", type=float, default=24.0, help="… or this many MiB, whichever is larger (default 24)")
    args = parser.parse_args()
    try:
        mix = {k: int(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    except ValueError:
        parser.error("--mix takes kind=share,kind=share,…")
    unknown = set(mix) - set(DEFAULT_MIX)
    if unknown or not any(mix.values()):
        parser.error(f"unknown kinds {sorted(unknown)} (known: {', '.join(DEFAULT_MIX)})" if unknown else "empty mix")

    engines = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    install_sigterm_handler()
    procs = Processes()
    ok = True
    try:
        for engine in engines:
            ok &= report(load_engine(engine, args, mix, procs), args)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
