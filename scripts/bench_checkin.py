#!/usr/bin/env python3
"""Check-in throughput of the real server, next to the framework's own ceiling.

What is measured
    ``POST /api/v1/checkins`` on a running ``python -m server serve`` (uvicorn, uvloop, httptools),
    SQLite and/or PostgreSQL, at a fixed concurrency for a fixed time. Every request is a distinct
    member × activity pair with a fresh ``client_uuid`` and that member's own bearer token, so each
    one takes the full *accepted* path: token checks, rules, a ``checkins`` row, a
    ``checkin_attempts`` row, a ``points_ledger`` entry and one ``points_tally`` upsert per ancestor
    org — no replays, no duplicates, nothing answered from a cache that a real crowd would miss.

    In the same run a bare Litestar app (``scripts/_echo_app.py``: one POST route decoding the same
    body into a msgspec Struct and returning it, same uvicorn settings) is loaded the same way.
    Its req/s is the ceiling of framework + HTTP stack on this machine; check-ins/s ÷ echo req/s
    says how much of that ceiling our code and the database leave.

    On SQLite, ``serve`` also runs the check-in writer process (``--no-writer``: without it), so
    a one-worker server then uses both cores while a one-worker echo uses one: run the echo with
    ``--workers 2`` as well to see the ratio against the whole machine's ceiling.

Why this way
    The machine has 2 cores, so the load generator must be cheap: ``wrk`` with a Lua script that
    sends a different pre-built body + Authorization header per request (``apt-get install wrk``);
    without wrk, a lean asyncio raw-socket HTTP/1.1 keep-alive client. Bodies and tokens are built
    before the clock starts. A short warm-up (its own bodies) precedes each measured run.

Afterwards the database is checked. Right after the load: accepted check-in rows = 200 responses
+ some of the "unanswered" requests (in flight when wrk stopped — wrk does not wait for them; the
server finishes those whose body it had read and drops the others whole). Then every body the load
may have sent is replayed once (idempotency: a replay must return the stored 200, an unprocessed one
is processed now), after which each body must have exactly one accepted check-in, one attempt and
one ledger entry, and the root org's tally must equal the ledger sum.

The table's "other load" is the share of all CPUs that processes other than ours (and other than
PostgreSQL's work for our database) used during the run: on a shared 2-core machine, anything above
a few % makes the figures low. On a VM, PostgreSQL figures also swing with scheduling: a round trip
costs ~35 µs when client and backend share a busy core but ~110 µs when the backend has to be woken
on an idle one, and a check-in makes over a dozen of them.

Data: one street root, 3 communities × 4 branches, ``--members`` members (each with a users row),
one station, ``--activities`` open ``branch_meeting`` activities (not required). Everything lives in
a temp dir / a fresh PostgreSQL database that is dropped at the end; every process started here is
stopped by its PID (process group), also on Ctrl-C.

    .venv/bin/python scripts/bench_checkin.py --db both --seconds 10 --concurrency 64
    .venv/bin/python scripts/bench_checkin.py --db postgres --workers 2
    .venv/bin/python scripts/bench_checkin.py --db sqlite --profile   # py-spy on the server, if installed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402
    ROOT,
    BenchDB,
    GroupCPU,
    OtherLoad,
    Processes,
    SetupError,
    activity_qr,
    build_org_tree,
    ensure_venv,
    free_port,
    insert_members,
    insert_open_activities,
    insert_station,
    install_sigterm_handler,
    percentile,
    print_table,
    temp_database,
    wait_http,
    write_json,
)

ensure_venv()

CHECKIN_PATH = "/api/v1/checkins"
ECHO_PATH = "/echo"

# wrk: each thread takes every n-th line of the bodies file ("<bearer>\t<json>") and sends them in
# order, one per request; done() prints one JSON line with the totals of all threads.
WRK_LUA = r"""
local threads = {}
local nthreads = 0

function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
   table.insert(threads, thread)
end

function init(args)
   local file, path, total = args[1], args[2], tonumber(args[3])
   reqs = {}
   local i = 0
   for line in io.lines(file) do
      if i % total == tid then
         local tab = line:find("\t", 1, true)
         reqs[#reqs + 1] = wrk.format("POST", path, {
            ["Content-Type"] = "application/json",
            ["Authorization"] = "Bearer " .. line:sub(1, tab - 1),
         }, line:sub(tab + 1))
      end
      i = i + 1
   end
   n, wrapped, c200, c422, cother = 0, 0, 0, 0, 0
end

function request()
   n = n + 1
   local k = n
   if k > #reqs then
      wrapped = wrapped + 1
      k = (k - 1) % #reqs + 1
   end
   return reqs[k]
end

function response(status, headers, body)
   if status == 200 then c200 = c200 + 1
   elseif status == 422 then c422 = c422 + 1
   else cother = cother + 1 end
end

function done(summary, latency, requests)
   local sent, ok, rej, other, wr, maxn = 0, 0, 0, 0, 0, 0
   for _, t in ipairs(threads) do
      sent = sent + t:get("n")
      maxn = math.max(maxn, t:get("n"))
      ok = ok + t:get("c200")
      rej = rej + t:get("c422")
      other = other + t:get("cother")
      wr = wr + t:get("wrapped")
   end
   sent = sent - 1  -- wrk calls request() once on thread 0 to check the script; that one is never sent
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"sent":%d,"used":%d,"c200":%d,"c422":%d,"cother":%d,"wrapped":%d,"responses":%d,"duration_us":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
      sent, maxn * nthreads, ok, rej, other, wr, summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(99)), math.floor(latency.max)))
end
"""


@dataclass
class Load:
    """One load run (warm-up or measured)."""

    tool: str
    sent: int = 0
    used: int = 0  # bodies[:used] covers every body this run may have sent
    c200: int = 0
    c422: int = 0
    cother: int = 0
    socket_errors: int = 0
    wrapped: int = 0
    responses: int = 0
    duration_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")

    @property
    def rps(self) -> float:
        return self.responses / self.duration_s if self.duration_s else 0.0

    @property
    def ok_rps(self) -> float:
        return self.c200 / self.duration_s if self.duration_s else 0.0

    @property
    def unanswered(self) -> int:
        return max(0, self.sent - self.responses)

    @property
    def errors(self) -> int:
        return self.cother + self.socket_errors


@dataclass
class Target:
    name: str
    engine: str
    workers: int
    run: Load
    warmup: Load | None = None
    checks: list[tuple[str, bool]] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    other: float = float("nan")  # share of all CPUs used by other processes during the measured run
    server_cpu: GroupCPU | None = None  # each server process's share of a core during the measured run


# --------------------------------------------------------------------------- data


@dataclass
class Bodies:
    warmup: list[tuple[str, bytes]]
    run: list[tuple[str, bytes]]
    root_id: int


async def prepare(db: BenchDB, members: int, activities: int, warmup_n: int, run_n: int) -> Bodies:
    """Org tree, members with logins, a station, open activities; then all request bodies."""
    import msgspec

    from server.core.context import open_context

    settings = db.settings()
    async with open_context(settings) as ctx:
        tree = await build_org_tree(ctx, communities=3, branches_per_community=4)
        people = await insert_members(ctx, tree.branches, members)
        station = await insert_station(ctx, tree.root_id, tree.root_path)
        acts = await insert_open_activities(ctx, activities, station, tree.root_id, tree.root_path)
        qrs = [activity_qr(ctx, a, station) for a in acts]
        bearer = [ctx.tokens.access_token(m.user_id, 120)[0] for m in people]
    pairs = len(people) * len(acts)
    if warmup_n + run_n > pairs:
        raise SetupError(f"only {pairs} member×activity pairs for {warmup_n + run_n} bodies: raise --members")
    scanned_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    stamp = scanned_at.astimezone(settings.tz).isoformat()  # RFC 3339 with +08:00, as a phone sends it
    encode = msgspec.json.encode
    out: list[tuple[str, bytes]] = []
    for k in range(warmup_n + run_n):  # member varies fastest: consecutive requests hit different members
        member, activity = k % len(people), (k // len(people)) % len(acts)
        body = {"client_uuid": uuid.uuid4().hex, "token": qrs[activity], "scanned_at": stamp, "kind": "in"}
        out.append((bearer[member], encode(body)))
    return Bodies(warmup=out[:warmup_n], run=out[warmup_n:], root_id=tree.root_id)


def write_bodies(path: Path, bodies: list[tuple[str, bytes]]) -> None:
    with open(path, "wb") as f:
        for bearer, body in bodies:
            f.write(bearer.encode() + b"\t" + body + b"\n")


# --------------------------------------------------------------------------- load generators


def run_wrk(procs: Processes, wrk: str, port: int, path: str, bodies_file: Path, lua: Path, seconds: float,
            concurrency: int, threads: int, log: Path) -> Load:
    threads = max(1, min(threads, concurrency))
    proc = procs.start(
        [wrk, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s",
         "-s", str(lua), f"http://127.0.0.1:{port}", "--", str(bodies_file), path, str(threads)],
        log=log,
    )
    try:
        proc.wait(timeout=seconds + 120)
    finally:
        procs.stop(proc)
    text = log.read_text(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise SetupError(f"wrk printed no result:\n{text[-2000:]}")
    d = json.loads(line.removeprefix("WRKJSON "))
    return Load(
        tool="wrk", sent=d["sent"], used=d["used"], c200=d["c200"], c422=d["c422"], cother=d["cother"],
        socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"], wrapped=d["wrapped"],
        responses=d["responses"], duration_s=d["duration_us"] / 1e6, p50_ms=d["p50_us"] / 1000, p99_ms=d["p99_us"] / 1000,
    )


async def _python_load(
    port: int, path: str, bodies: list[tuple[str, bytes]], seconds: float, concurrency: int, once: bool = False
) -> Load:
    """Keep-alive HTTP/1.1 over raw asyncio streams: write a pre-built request, read one response.
    At the deadline no new request starts; those in flight are awaited (so nothing is unanswered).
    ``once``: send every body exactly once, no deadline (the replay check)."""
    host = f"127.0.0.1:{port}".encode()
    raw = [
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + bearer.encode() + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        + body
        for bearer, body in bodies
    ]
    result = Load(tool="python")
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    perf = time.perf_counter

    async def client() -> None:
        reader = writer = None
        while once or loop.time() < deadline:
            if once and result.sent >= len(raw):
                break
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                k = result.sent
                result.sent += 1
                if k >= len(raw):
                    result.wrapped += 1
                started = perf()
                writer.write(raw[k % len(raw)])
                head = await reader.readuntil(b"\r\n\r\n")
                marker = head.lower().find(b"\r\ncontent-length:")
                if marker < 0:
                    raise ConnectionError("response without content-length")
                end = head.find(b"\r\n", marker + 2)
                await reader.readexactly(int(head[marker + 17:end]))
                latencies.append(perf() - started)
                statuses[int(head[9:12])] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
                result.socket_errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    started = perf()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.duration_s = perf() - started
    result.used = min(result.sent, len(raw))
    latencies.sort()
    result.responses = len(latencies)
    result.c200, result.c422 = statuses[200], statuses[422]
    result.cother = result.responses - result.c200 - result.c422
    result.p50_ms, result.p99_ms = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    return result


def run_python(
    port: int, path: str, bodies: list[tuple[str, bytes]], seconds: float, concurrency: int, once: bool = False
) -> Load:
    coro = _python_load(port, path, bodies, seconds, concurrency, once)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


class Driver:
    """Runs a load with wrk when available, else with the Python client."""

    def __init__(self, procs: Processes, workdir: Path, force_python: bool, threads: int) -> None:
        self.procs = procs
        self.workdir = workdir
        self.wrk = None if force_python else shutil.which("wrk")
        self.threads = threads
        self.lua = workdir / "bodies.lua"
        self.lua.write_text(WRK_LUA)
        self._files: dict[int, Path] = {}

    @property
    def tool(self) -> str:
        return "wrk" if self.wrk else "python"

    def _file(self, bodies: list[tuple[str, bytes]]) -> Path:
        key = id(bodies)
        if key not in self._files:
            self._files[key] = self.workdir / f"bodies-{len(self._files)}.txt"
            write_bodies(self._files[key], bodies)
        return self._files[key]

    def load(self, port: int, path: str, bodies: list[tuple[str, bytes]], seconds: float, concurrency: int) -> Load:
        if self.wrk:
            return run_wrk(self.procs, self.wrk, port, path, self._file(bodies), self.lua, seconds, concurrency,
                           self.threads, self.workdir / "wrk.log")
        return run_python(port, path, bodies, seconds, concurrency)


# --------------------------------------------------------------------------- servers


def start_hongyi(procs: Processes, db: BenchDB, workers: int, log: Path, writer: bool = True) -> tuple[object, int]:
    port = free_port()
    proc = procs.start(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env={**db.env, "SQLITE_CHECKIN_WRITER": "on" if writer else "off"}, log=log,
    )
    wait_http(port, "/api/v1/health", proc, log)
    return proc, port


def start_echo(procs: Processes, workers: int, log: Path) -> tuple[object, int]:
    port = free_port()
    proc = procs.start(
        [sys.executable, "-m", "uvicorn", "_echo_app:app", "--app-dir", str(ROOT / "scripts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
         "--log-level", "warning", "--no-access-log", "--no-proxy-headers", "--no-server-header"],
        log=log,
    )
    wait_http(port, "/health", proc, log)
    return proc, port


def start_profiler(procs: Processes, pid: int, seconds: float, out: Path, log: Path) -> object | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("  (py-spy not found: pip install py-spy)")
        return None
    return procs.start(
        [spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(max(1, int(seconds) - 1)), "--rate", "200",
         "--format", "raw", "--nonblocking", "-o", str(out)],
        log=log,
    )


def summarize_profile(raw: Path, top: int = 18) -> list[str]:
    """Self time by function and inclusive time of our own (server/) functions, from py-spy raw stacks."""
    if not raw.exists():
        return ["(no profile written)"]
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.strip() for f in stack.split(";")]
        if not frames:
            continue
        self_time[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames if _is_ours(f)}:
            inclusive[frame] += n
    if not total:
        return ["(empty profile)"]
    lines = [f"{total} samples; self time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    lines.append("inclusive time of server/ functions:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return lines


def _is_ours(frame: str) -> bool:
    return "(server/" in frame or f"{ROOT}/server/" in frame


def _short(frame: str) -> str:
    # "func (/abs/path/file.py:12)" → "func (server/…/file.py:12)" or "func (package/file.py:12)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if f"{ROOT}/server/" in where:
        where = where.replace(f"{ROOT}/", "", 1)
    elif "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    return f"{name} ({where})" if where else name


# --------------------------------------------------------------------------- verification

_COUNTS = {
    "accepted": "SELECT COUNT(*) FROM checkins WHERE status = 'accepted' AND kind = 'in'",
    "other_rows": "SELECT COUNT(*) FROM checkins WHERE NOT (status = 'accepted' AND kind = 'in')",
    "attempts": "SELECT COUNT(*) FROM checkin_attempts",
    "uuids": "SELECT COUNT(DISTINCT client_uuid) FROM checkin_attempts",
    "attempts_ok": "SELECT COUNT(*) FROM checkin_attempts WHERE status = 'accepted'",
    "ledger": "SELECT COUNT(*) FROM points_ledger",
    "ledger_sum": "SELECT COALESCE(SUM(delta), 0) FROM points_ledger",
    "tally_sum": "SELECT COALESCE(SUM(earned), 0) FROM points_tally WHERE org_id = {root}",
}


async def _counts(db: BenchDB, root_id: int) -> dict[str, float]:
    """Plain SQL through the raw driver (read-only; works while the server is still up)."""
    sql = {k: v.format(root=int(root_id)) for k, v in _COUNTS.items()}
    if db.engine == "sqlite":
        import sqlite3

        conn = sqlite3.connect(f"file:{db.sqlite_path}?mode=ro", uri=True, timeout=30)
        try:
            return {k: float(conn.execute(q).fetchone()[0]) for k, q in sql.items()}
        finally:
            conn.close()
    import asyncpg

    conn = await asyncpg.connect(db.url)
    try:
        return {k: float(await conn.fetchval(q)) for k, q in sql.items()}
    finally:
        await conn.close()


def settled_counts(db: BenchDB, root_id: int, timeout: float = 30.0) -> dict[str, float]:
    """Counts once requests still in flight when the load stopped are done (two equal reads 0.5 s apart)."""
    deadline = time.monotonic() + timeout
    previous = asyncio.run(_counts(db, root_id))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = asyncio.run(_counts(db, root_id))
        if current == previous:
            return current
        previous = current
    return previous


def database_checks(loads: list[Load], before: dict[str, float], replay: Load | None,
                    after: dict[str, float]) -> list[tuple[str, bool]]:
    ok = sum(x.c200 for x in loads)
    sent = sum(x.sent for x in loads)
    unanswered = sum(x.unanswered for x in loads)
    socket_errors = sum(x.socket_errors for x in loads)
    wrapped = sum(x.wrapped for x in loads)
    rows0 = int(before["accepted"])
    checks = [
        (f"after the load: sent {sent} = 200 responses {ok} + unanswered when the load stopped {unanswered}"
         f" + other {sent - ok - unanswered}", True),
        (f"after the load: accepted check-in rows {rows0} = 200 responses {ok} + {rows0 - ok} of the {unanswered}"
         f" unanswered (a request dropped by its client before its body was read is not processed)",
         ok <= rows0 <= ok + unanswered + socket_errors if not wrapped else True),
    ]
    if replay is not None:
        used = sum(x.used for x in loads)
        checks.append((
            f"replay of all {used} bodies the load may have sent: {replay.c200} × 200, {replay.c422} × 422,"
            f" {replay.errors} other/errors ({replay.rps:,.0f} req/s)",
            replay.c200 == used and replay.responses == used,
        ))
        checks.append((f"after the replay: accepted check-in rows {int(after['accepted'])} == bodies {used}"
                       " (each body exactly one check-in: nothing lost, nothing doubled)", int(after["accepted"]) == used))
    rows = int(after["accepted"])
    checks += [
        (f"no other check-in rows ({int(after['other_rows'])})", after["other_rows"] == 0),
        (f"attempts {int(after['attempts'])} == distinct client_uuids {int(after['uuids'])}"
         f" == accepted attempts {int(after['attempts_ok'])} == accepted rows {rows}",
         after["attempts"] == after["uuids"] == after["attempts_ok"] == rows),
        (f"ledger rows {int(after['ledger'])} == accepted rows", after["ledger"] == rows),
        (f"root tally Σ {after['tally_sum']:g} == ledger Σ {after['ledger_sum']:g}",
         abs(after["tally_sum"] - after["ledger_sum"]) < 1e-6),
    ]
    return checks


# --------------------------------------------------------------------------- main


def bench_engine(engine: str, args: argparse.Namespace, procs: Processes, driver_args: dict, echo_bodies: list) -> Target:
    workers = args.workers
    with temp_database(engine, "checkin") as db:
        print(f"[{engine}] building data: {args.members} members, {args.activities} open activities ...", flush=True)
        t0 = time.perf_counter()
        warmup_n = int(args.warmup * args.pool_rate) if args.warmup > 0 else 0
        run_n = int(args.seconds * args.pool_rate)
        bodies = asyncio.run(prepare(db, args.members, args.activities, warmup_n, run_n))
        print(f"[{engine}] {warmup_n + run_n} distinct request bodies ready in {time.perf_counter() - t0:.1f}s", flush=True)
        if not echo_bodies:
            echo_bodies.extend(bodies.run)  # same bodies for the echo ceiling
        driver = Driver(procs, db.tmpdir, **driver_args)
        log = db.tmpdir / "server.log"
        proc, port = start_hongyi(procs, db, workers, log, writer=not args.no_writer)
        target = Target(name="check-in", engine=engine, workers=workers, run=Load(tool=driver.tool))
        try:
            if warmup_n:
                target.warmup = driver.load(port, CHECKIN_PATH, bodies.warmup, args.warmup, args.concurrency)
                time.sleep(0.5)  # let the warm-up's last requests finish
            spy = None
            if args.profile:
                spy = start_profiler(procs, proc.pid, args.seconds, db.tmpdir / "profile.txt", db.tmpdir / "py-spy.log")
            print(f"[{engine}] loading {CHECKIN_PATH} for {args.seconds:g}s at concurrency {args.concurrency}"
                  f" ({driver.tool}, {workers} worker(s)) ...", flush=True)
            with OtherLoad(procs, db.pg_name) as other, GroupCPU(proc.pid) as server_cpu:
                target.run = driver.load(port, CHECKIN_PATH, bodies.run, args.seconds, args.concurrency)
            target.other = other.share
            target.server_cpu = server_cpu
            if spy is not None:
                spy.wait(timeout=60)
                procs.stop(spy)
                target.profile = summarize_profile(db.tmpdir / "profile.txt")
            loads = [x for x in (target.warmup, target.run) if x is not None]
            before = settled_counts(db, bodies.root_id)
            replay = None
            if not args.no_replay:
                sent_bodies = bodies.warmup[:target.warmup.used] if target.warmup else []
                sent_bodies += bodies.run[:target.run.used]
                print(f"[{engine}] replaying {len(sent_bodies)} bodies (idempotency check) ...", flush=True)
                replay = run_python(port, CHECKIN_PATH, sent_bodies, 0, args.concurrency, once=True)
        finally:
            procs.stop(proc)  # graceful: in-flight requests finish before the checks below
        after = asyncio.run(_counts(db, bodies.root_id))
        target.checks = database_checks(loads, before, replay, after)
    return target


def bench_echo(workers: int, args: argparse.Namespace, procs: Processes, driver_args: dict, bodies: list) -> Target:
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="hongyi-echo-"))
    try:
        driver = Driver(procs, workdir, **driver_args)
        log = workdir / "echo.log"
        proc, port = start_echo(procs, workers, log)
        try:
            print(f"[echo] loading {ECHO_PATH} for {args.seconds:g}s ({workers} worker(s)) ...", flush=True)
            warm = driver.load(port, ECHO_PATH, bodies, args.warmup, args.concurrency) if args.warmup > 0 else None
            with OtherLoad(procs) as other:
                run = driver.load(port, ECHO_PATH, bodies, args.seconds, args.concurrency)
        finally:
            procs.stop(proc)
        return Target(name="echo (bare Litestar)", engine="-", workers=workers, run=run, warmup=warm, other=other.share)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured load per target (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each run (0: none)")
    parser.add_argument("--concurrency", type=int, default=64, help="open connections (default 64)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for the server and the echo (default 1)")
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--activities", type=int, default=200)
    parser.add_argument("--pool-rate", type=int, default=16000,
                        help="distinct bodies built per second of load (must exceed the check-in rate; default 16000)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--python-client", action="store_true", help="use the asyncio client even if wrk is installed")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during the measured run")
    parser.add_argument("--no-replay", action="store_true", help="skip re-sending every body after the run")
    parser.add_argument("--echo-workers", type=int, nargs="*", default=[],
                        help="also measure the echo with these worker counts (e.g. 2: the whole machine's ceiling)")
    parser.add_argument("--no-writer", action="store_true",
                        help="SQLite: serve without the check-in writer process (SQLITE_CHECKIN_WRITER=off)")
    parser.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON (read by scripts/bench.py)")
    args = parser.parse_args()
    engines = ["sqlite", "postgres"] if args.db == "both" else [args.db]

    install_sigterm_handler()
    procs = Processes()
    driver_args = {"force_python": args.python_client, "threads": args.wrk_threads}
    targets: list[Target] = []
    echo_bodies: list[tuple[str, bytes]] = []
    try:
        for engine in engines:
            targets.append(bench_engine(engine, args, procs, driver_args, echo_bodies))
        echo: dict[int, Target] = {}
        for workers in sorted({t.workers for t in targets} | set(args.echo_workers)):
            echo[workers] = bench_echo(workers, args, procs, driver_args, echo_bodies)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()

    print()
    print(f"POST {CHECKIN_PATH}: {args.seconds:g}s per target, concurrency {args.concurrency}, "
          f"{targets[0].run.tool} load generator, {os.cpu_count()} CPUs; SQLite "
          + ("without the check-in writer (--no-writer)" if args.no_writer else "with the check-in writer process"))
    rows = []
    for t in [*targets, *echo.values()]:
        ceiling = echo[t.workers].run.rps if t.name == "check-in" else None
        rows.append([
            t.name, t.engine, t.workers, f"{t.run.rps:,.0f}", f"{t.run.p50_ms:.1f}", f"{t.run.p99_ms:.1f}",
            t.run.c200, t.run.c422, t.run.errors,
            f"{t.run.ok_rps / ceiling:.2f}" if ceiling else "-",
            f"{t.other:.0%}" if t.other == t.other else "?",
        ])
    print_table(["target", "db", "workers", "req/s", "p50 ms", "p99 ms", "200", "422", "errors",
                 "check-ins/s ÷ echo req/s", "other load*"], rows)
    for t in targets:
        for workers, e in sorted(echo.items()):
            if workers != t.workers and e.run.rps:
                print(f"check-in {t.engine} ÷ echo with {workers} worker(s): {t.run.ok_rps / e.run.rps:.2f}")
    print("* share of all CPUs used during the run by other processes (other sessions' tests and their PostgreSQL"
          " backends, say): anything above a few % makes the figures low")
    for t in targets:
        if t.server_cpu is not None:
            print(f"[{t.engine}] server processes during the load, share of one core running / waiting for a CPU"
                  f" (the one near 100 % running sets the rate): {t.server_cpu.describe()}")
    failed = False
    for t in targets:
        print(f"\n[{t.engine}] database check (warm-up + run):")
        for text, ok in t.checks:
            print(f"  {'OK  ' if ok else 'FAIL'} {text}")
            failed |= not ok
        if t.run.wrapped:
            print(f"  note: {t.run.wrapped} requests reused bodies (raise --pool-rate)")
        if t.profile:
            print(f"\n[{t.engine}] py-spy profile of the server during the run:")
            print("\n".join("  " + line for line in t.profile))
    write_json(args.json_out, {
        "benchmark": "checkin", "seconds": args.seconds, "concurrency": args.concurrency, "members": args.members,
        "activities": args.activities, "sqlite_writer": not args.no_writer,
        "targets": [target_json(t) for t in [*targets, *echo.values()]],
    })
    return 1 if failed else 0


def target_json(t: Target) -> dict:
    """One target's figures for ``--json-out`` (also used by ``bench_naive_piccolo.py``)."""
    return {
        "name": t.name, "engine": t.engine, "workers": t.workers, "tool": t.run.tool, "rps": t.run.rps,
        "ok_rps": t.run.ok_rps, "p50_ms": t.run.p50_ms, "p99_ms": t.run.p99_ms, "c200": t.run.c200,
        "c422": t.run.c422, "errors": t.run.errors, "wrapped": t.run.wrapped, "duration_s": t.run.duration_s,
        "other_load": t.other, "checks": [{"text": text, "ok": ok} for text, ok in t.checks],
        "server_cpu": [{"process": name, "running": run, "waiting": wait}
                       for name, run, wait in (t.server_cpu.processes if t.server_cpu else [])],
    }


if __name__ == "__main__":
    sys.exit(main())
