"""Shared plumbing for ``bench_checkin.py`` and ``bench_sync.py`` (not a benchmark itself).

* throw-away databases: a SQLite file in a temp dir, or a fresh PostgreSQL database that is
  dropped again on exit (also on Ctrl-C / SIGTERM / exceptions);
* ``python -m server migrate`` against them, exactly as an operator would;
* child processes started in their own process group and stopped by that PID;
* small data builders (org tree, members + users, station, open activities) that write through
  the app's own ``Database`` (``ctx.db``) with bulk ``executemany``;
* timing helpers.

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("HONGYI_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def ensure_venv() -> None:
    """Re-run under the project's virtualenv when started with a bare ``python3``."""
    try:
        import msgspec  # noqa: F401
        import litestar  # noqa: F401
    except ImportError:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.executable).resolve() != venv_python.resolve():
            os.execv(str(venv_python), [str(venv_python), *sys.argv])
        raise


class SetupError(RuntimeError):
    """The benchmark could not be set up (database, migration, server start)."""


def install_sigterm_handler() -> None:
    """SIGTERM behaves like Ctrl-C, so every ``finally`` (process stop, DROP DATABASE) runs."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------- databases


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _check_local(url: str) -> None:
    from urllib.parse import urlparse

    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", None, ""):
        raise SetupError(f"benchmarks only talk to 127.0.0.1, not {host}")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    _check_local(PG_ADMIN_URL)
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class BenchDB:
    engine: str  # sqlite | postgres
    url: str
    tmpdir: Path
    key_file: Path
    pg_name: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for ``python -m server ...`` against this database."""
        return {
            "DATABASE_URL": self.url,
            "HONGYI_KEY_FILE": str(self.key_file),
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
            "HONGYI_PWA_DIST": str(self.tmpdir / "no-pwa"),
        }

    def settings(self) -> Any:
        from server.settings import Settings

        return Settings.from_env(self.env)

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))


@contextlib.contextmanager
def temp_database(engine: str, label: str) -> Iterator[BenchDB]:
    """A migrated, empty database; removed (file or DROP DATABASE) when the block ends."""
    tmpdir = Path(tempfile.mkdtemp(prefix=f"hongyi-{label}-{engine}-"))
    pg_name: str | None = None
    try:
        if engine == "sqlite":
            url = f"sqlite:///{tmpdir / 'bench.db'}"
        elif engine == "postgres":
            pg_name = f"hongyi_bench_{label}_{uuid.uuid4().hex[:8]}"
            try:
                asyncio.run(_pg_admin(f'CREATE DATABASE "{pg_name}"'))
            except Exception as exc:  # noqa: BLE001 — any connection problem is a setup failure
                pg_name = None
                raise SetupError(f"PostgreSQL not usable at {PG_ADMIN_URL}: {exc}") from exc
            url = _pg_url(pg_name)
        else:
            raise SetupError(f"unknown engine {engine!r}")
        db = BenchDB(engine=engine, url=url, tmpdir=tmpdir, key_file=tmpdir / "keys.json", pg_name=pg_name)
        migrate(db)
        yield db
    finally:
        if pg_name is not None:
            try:
                asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            except Exception as exc:  # noqa: BLE001
                print(f"warning: could not drop database {pg_name}: {exc}", file=sys.stderr)
        shutil.rmtree(tmpdir, ignore_errors=True)


def migrate(db: BenchDB) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "migrate"], cwd=ROOT, env={**os.environ, **db.env},
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise SetupError(f"migrate failed ({db.engine}):\n{done.stdout}\n{done.stderr}")


# --------------------------------------------------------------------------- processes


class Processes:
    """Children in their own session/process group; stopped by PID (the group led by that PID)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None,
              cwd: Path = ROOT, user: str | None = None) -> subprocess.Popen[bytes]:
        out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 — closed with the child
        proc = subprocess.Popen(
            list(args), cwd=cwd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, user=user,
        )
        if log is not None:
            out.close()  # the child has its own descriptor
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        """SIGTERM to the group led by ``proc.pid`` (uvicorn workers included), SIGKILL if it lingers."""
        if proc not in self.procs:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers of a multi-process uvicorn may outlive their parent for a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.05)
        if _group_alive(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc, timeout=5.0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], log: Path | None, timeout: float = 60.0) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    last: str = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise SetupError(f"server exited with code {proc.returncode} before answering {path}:\n{tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise SetupError(f"server on port {port} did not answer {path} within {timeout:.0f}s ({last})")


# --------------------------------------------------------------------------- a PostgreSQL of our own

PG_BIN = Path(os.environ.get("HONGYI_PG_BIN", "/usr/lib/postgresql/15/bin"))


class ThrowawayPostgres:
    """initdb in ``workdir/pgdata``; ``postgres`` on a free 127.0.0.1 port, TCP only. As root it runs
    as the ``postgres`` user (PostgreSQL refuses to run as root)."""

    def __init__(self, procs: Processes, workdir: Path, pg_bin: Path = PG_BIN) -> None:
        self.procs = procs
        self.workdir = workdir
        self.bin = pg_bin
        self.data = workdir / "pgdata"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        if not (self.bin / "initdb").exists():
            raise SetupError(f"no initdb in {self.bin} (use --pg-bin)")
        self.data.mkdir()
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            self.workdir.chmod(0o755)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        done = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
             "-E", "UTF8", "--locale=C"],
            capture_output=True, text=True, user=self.user, cwd=self.workdir, timeout=120,
        )
        if done.returncode != 0:
            raise SetupError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def start(self, timeout: float = 60.0) -> float:
        """Start (after a crash: WAL recovery first); seconds until it accepts connections."""
        self.starts += 1
        t0 = time.monotonic()
        self.proc = self.procs.start(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=60",
             "-c", "shared_buffers=64MB"],
            log=self.workdir / f"postgres-{self.starts}.log", cwd=self.workdir, user=self.user,
        )
        while True:
            if self.proc.poll() is not None:
                log = (self.workdir / f"postgres-{self.starts}.log").read_text(errors="replace")[-2000:]
                raise SetupError(f"postgres exited with {self.proc.returncode}:\n{log}")
            if asyncio.run(self._ready()):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise SetupError(f"postgres not ready within {timeout:.0f}s")
            time.sleep(0.05)

    async def _ready(self) -> bool:
        import asyncpg

        try:
            conn = await asyncpg.connect(self.url("postgres"), timeout=2)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
            return False
        await conn.close()
        return True

    def crash(self, mode: str) -> None:
        assert self.proc is not None
        if mode == "kill":
            os.killpg(self.proc.pid, signal.SIGKILL)  # postmaster and every backend at once
        else:
            os.kill(self.proc.pid, signal.SIGQUIT)  # immediate shutdown: no checkpoint, recovery on start
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10  # backends of an immediate shutdown exit right after
        while time.monotonic() < deadline and _group_has_live_members(self.proc.pid):
            time.sleep(0.02)
        self.procs.procs.remove(self.proc)
        self.proc = None

    def create_database(self, name: str) -> None:
        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(self.url("postgres"))
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())


def _live_group_members(pgid: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, ``/proc/<pid>/stat`` fields after the command name) of each live process in group
    ``pgid`` (zombies hold nothing; init reaps them)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            yield int(name), fields


def _live_group_stats(pgid: int) -> Iterator[list[str]]:
    return (fields for _, fields in _live_group_members(pgid))


def _group_has_live_members(pgid: int) -> bool:
    return any(True for _ in _live_group_stats(pgid))


# --------------------------------------------------------------------------- data builders

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["建国", "秀英", "志强", "桂兰", "海燕", "文明", "淑珍", "卫东", "红梅", "国庆", "丽华", "振华", "玉兰", "德明", "春生"]


@dataclass
class OrgTree:
    root_id: int
    root_path: str
    communities: list[tuple[int, str]] = field(default_factory=list)
    branches: list[tuple[int, str]] = field(default_factory=list)  # (org id, path)


async def build_org_tree(ctx: Any, communities: int, branches_per_community: int) -> OrgTree:
    """Street root → communities → branches; paths in the '/1/2/3/' format the app uses."""
    from server.core.timeutil import utcnow
    from server.orgs.services import create_root

    root = await create_root(ctx, "基准测试街道党工委")
    tree = OrgTree(root_id=root, root_path=f"/{root}/")

    async def child(name: str, kind: str, parent: int, parent_path: str, depth: int) -> tuple[int, str]:
        async with ctx.db.transaction():
            org_id = int(await ctx.db.fetchval(
                "INSERT INTO orgs (name, kind, parent_id, path, depth, status, created_at)"
                " VALUES ($1, $2, $3, '', $4, 'active', $5) RETURNING id",
                name, kind, parent, depth, utcnow(),
            ))
            path = f"{parent_path}{org_id}/"
            await ctx.db.execute("UPDATE orgs SET path = $1 WHERE id = $2", path, org_id)
        return org_id, path

    for c in range(communities):
        community = await child(f"第{c + 1}社区党委", "community_committee", root, tree.root_path, 1)
        tree.communities.append(community)
        for b in range(branches_per_community):
            tree.branches.append(await child(f"第{c + 1}社区第{b + 1}党支部", "branch", community[0], community[1], 2))
    return tree


@dataclass
class BenchMember:
    member_id: int
    user_id: int | None
    org_id: int
    org_path: str


async def insert_members(
    ctx: Any, branches: Sequence[tuple[int, str]], count: int, *, with_users: bool = True, zero_tally: bool = True,
    phone_prefix: str = "139", chunk: int = 20_000,
) -> list[BenchMember]:
    """``count`` active members spread round-robin over ``branches`` (+ a login each, + zero tally rows)."""
    from server.core.timeutil import utcnow
    from server.points.services import current_year

    now = utcnow()
    rows = []
    for i in range(count):
        org_id, path = branches[i % len(branches)]
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)]
        rows.append((
            name, "male" if i % 2 else "female", date(1940 + i % 50, 1 + i % 12, 1 + i % 28), f"{phone_prefix}{i:08d}",
            date(1965 + i % 55, 7, 1), date(1966 + i % 55, 7, 1), "formal", org_id, path, [], now,
        ))
    for start in range(0, count, chunk):
        async with ctx.db.transaction():
            await ctx.db.executemany(
                "INSERT INTO members (name, gender, birth_date, phone, join_date, full_date, member_type, status, org_id,"
                " org_path, tags, card_version, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, 'normal', $8, $9, $10, 1, $11, $11)",
                rows[start:start + chunk],
            )
    fetched = await ctx.db.fetch(
        "SELECT id, org_id, org_path FROM members WHERE phone LIKE $1 ORDER BY id", f"{phone_prefix}%"
    )
    members = [BenchMember(int(r[0]), None, int(r[1]), r[2]) for r in fetched]
    if with_users:
        user_rows = [(f"{phone_prefix}{i:08d}", "党员", m.member_id, True, now) for i, m in enumerate(members)]
        for start in range(0, len(user_rows), chunk):
            async with ctx.db.transaction():
                await ctx.db.executemany(
                    "INSERT INTO users (phone, display_name, password_hash, member_id, is_active, created_at)"
                    " VALUES ($1, $2, NULL, $3, $4, $5)",
                    user_rows[start:start + chunk],
                )
        ids = dict(await ctx.db.fetch("SELECT member_id, id FROM users WHERE member_id IS NOT NULL"))
        for m in members:
            m.user_id = int(ids[m.member_id])
    if zero_tally:  # what members.services does for a new member: a 0 row per ancestor org
        from server.core.sql import path_ids

        year = current_year(ctx)
        tally = [(org_id, year, m.member_id) for m in members for org_id in path_ids(m.org_path)]
        for start in range(0, len(tally), chunk):
            async with ctx.db.transaction():
                await ctx.db.executemany(
                    "INSERT INTO points_tally (org_id, year, member_id, earned) VALUES ($1, $2, $3, 0)",
                    tally[start:start + chunk],
                )
    return members


async def insert_station(ctx: Any, org_id: int, org_path: str) -> int:
    from server.core.timeutil import utcnow

    async with ctx.db.transaction():
        return int(await ctx.db.fetchval(
            "INSERT INTO stations (name, org_id, org_path, address, service_hours, poster_version, status, created_at)"
            " VALUES ($1, $2, $3, $4, $5, 1, 'active', $6) RETURNING id",
            "基准测试服务站", org_id, org_path, "测试路 1 号", "每天 8:30–20:00", utcnow(),
        ))


@dataclass
class OpenActivity:
    activity_id: int
    opens: datetime
    closes: datetime


async def insert_open_activities(
    ctx: Any, count: int, station_id: int, org_id: int, org_path: str, kind: str = "branch_meeting",
) -> list[OpenActivity]:
    """``count`` not-required activities whose check-in window is open now (−2 h … +3 h)."""
    from server.core.timeutil import utcnow

    now = utcnow().replace(microsecond=0)
    opens, starts, ends = now - timedelta(hours=2), now - timedelta(minutes=90), now + timedelta(hours=3)
    rows = [
        (kind, f"支部党员大会 #{i + 1}", station_id, org_id, org_path, starts, ends, opens, ends, False, False,
         "planned", now)
        for i in range(count)
    ]
    async with ctx.db.transaction():
        await ctx.db.executemany(
            "INSERT INTO activities (type, title, description, station_id, org_id, org_path, starts_at, ends_at,"
            " checkin_opens_at, checkin_closes_at, required, records_hours, capacity, status, created_by, created_at)"
            " VALUES ($1, $2, '', $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, NULL, $13)",
            rows,
        )
    ids = await ctx.db.fetch("SELECT id FROM activities WHERE station_id = $1 ORDER BY id", station_id)
    return [OpenActivity(int(r[0]), opens, ends) for r in ids[-count:]]


def activity_qr(ctx: Any, activity: OpenActivity, station_id: int) -> str:
    """The URL a camera reads off the activity poster."""
    token = ctx.tokens.activity_token(
        activity.activity_id, station_id, int(activity.opens.timestamp()), int(activity.closes.timestamp())
    )
    return ctx.tokens.qr_url(token)


# --------------------------------------------------------------------------- offline sync batches


@dataclass
class SyncStreet:
    """Members with bearer tokens, one station and open activities, for sync fault runs. Batch
    ``(member, part)`` of ``size`` items names activities ``[part * size, (part + 1) * size)``, so
    every item of every batch is a distinct check-in that is accepted (+1 point)."""

    root_id: int
    members: list[int]
    bearer: dict[int, str]
    qrs: list[str]
    batches: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)

    def batch(self, member_id: int, part: int = 0, size: int | None = None) -> list[dict[str, Any]]:
        """The items of one offline batch: made on first use, the same items (client_uuids) after."""
        key = (member_id, part)
        if key not in self.batches:
            size = size or len(self.qrs)
            qrs = self.qrs[part * size:(part + 1) * size]
            if len(qrs) < size:
                raise SetupError(f"only {len(self.qrs)} activities for batch part {part} of {size} items")
            start = datetime.now().astimezone().replace(microsecond=0) - timedelta(minutes=30)
            self.batches[key] = [
                {"client_uuid": uuid.uuid4().hex, "token": qr, "scanned_at": (start + timedelta(seconds=2 * i)).isoformat()}
                for i, qr in enumerate(qrs)
            ]
        return self.batches[key]

    def body(self, member_id: int, part: int = 0, items: list[dict[str, Any]] | None = None) -> bytes:
        import json

        return json.dumps({"items": self.batch(member_id, part) if items is None else items}).encode()

    def headers(self, member_id: int) -> dict[str, str]:
        return {"authorization": f"Bearer {self.bearer[member_id]}", "content-type": "application/json"}


async def build_sync_street(ctx: Any, members: int, activities: int = 500) -> SyncStreet:
    """A street root with two branches, ``members`` members with logins, a station, open activities."""
    tree = await build_org_tree(ctx, communities=1, branches_per_community=2)
    people = await insert_members(ctx, tree.branches, members)
    station = await insert_station(ctx, tree.root_id, tree.root_path)
    acts = await insert_open_activities(ctx, activities, station, tree.root_id, tree.root_path)
    return SyncStreet(
        root_id=tree.root_id, members=[m.member_id for m in people],
        bearer={m.member_id: ctx.tokens.access_token(int(m.user_id or 0), 120)[0] for m in people},
        qrs=[activity_qr(ctx, a, station) for a in acts],
    )


async def exactly_once_problems(db: Any, street: SyncStreet, answers: dict[str, dict[str, Any]]) -> list[str]:
    """What breaks "every item exactly once", after every batch of ``street`` has been replayed:
    one ``checkins`` row per item, one ``checkin_attempts`` row per (client_uuid, member) pointing at
    it (a replay stores nothing new), one ``points_ledger`` entry per check-in, every member's tally
    at the root org equal to their ledger sum, and ``answers`` (client_uuid → the result a client
    was given) agreeing with the stored rows. ``db`` is the app's ``Database``. Empty: all good."""
    problems: list[str] = []
    sent = {(item["client_uuid"], member_id) for (member_id, _), items in street.batches.items() for item in items}
    attempts = await db.fetch("SELECT client_uuid, member_id, status, checkin_id, activity_id FROM checkin_attempts")
    stored = {(a[0], a[1]) for a in attempts}
    if len(attempts) != len(sent) or stored != sent:
        problems.append(f"attempts: {len(attempts)} rows for {len(sent)} items sent;"
                        f" {len(sent - stored)} items without one, {len(stored - sent)} unknown")
    checkins = {r[0]: r for r in await db.fetch("SELECT id, member_id, activity_id, status FROM checkins")}
    if len(checkins) != len(sent):
        problems.append(f"check-ins: {len(checkins)} rows for {len(sent)} items")
    stored_by_uuid: dict[str, tuple[Any, Any]] = {}
    bad = 0
    for client_uuid, member_id, status, checkin_id, activity_id in attempts:
        row = checkins.get(checkin_id)
        if status != "accepted" or row is None or (row[1], row[2], row[3]) != (member_id, activity_id, "accepted"):
            bad += 1
        stored_by_uuid[client_uuid] = (checkin_id, activity_id)
    if bad:
        problems.append(f"{bad} attempts not accepted or not pointing at their member's check-in")
    if len({a[3] for a in attempts}) != len(attempts):
        problems.append("some check-in is shared by two attempts")
    ledger = await db.fetch("SELECT source_id, member_id, delta, year FROM points_ledger WHERE source_type = 'checkin'")
    if sorted(r[0] for r in ledger) != sorted(checkins):
        problems.append(f"ledger: {len(ledger)} check-in entries ({len({r[0] for r in ledger})} distinct)"
                        f" for {len(checkins)} check-ins")
    others = int(await db.fetchval("SELECT COUNT(*) FROM points_ledger")) - len(ledger)
    if others:
        problems.append(f"ledger: {others} entries that are not check-ins")
    sums: dict[tuple[int, int], float] = {}
    for _, member_id, delta, year in ledger:
        sums[(member_id, year)] = sums.get((member_id, year), 0.0) + float(delta)
    tally = {
        (r[0], r[1]): float(r[2])
        for r in await db.fetch("SELECT member_id, year, earned FROM points_tally WHERE org_id = $1", street.root_id)
    }
    if {k: v for k, v in tally.items() if v} != sums:
        problems.append(f"tally at the root (Σ {sum(tally.values()):g}) differs from the ledger (Σ {sum(sums.values()):g})")
    wrong = [u for u, r in answers.items()
             if (r.get("status"), r.get("points_awarded")) != ("accepted", 1)
             or (r.get("checkin_id"), r.get("activity_id")) != stored_by_uuid.get(u)]
    if wrong:
        problems.append(f"{len(wrong)} results given to clients disagree with the stored rows, e.g. {answers[wrong[0]]}")
    return problems


# --------------------------------------------------------------------------- timing / printing


def _proc_ticks() -> dict[int, tuple[int, int, str]]:
    """pid → (utime + stime in clock ticks, process group, command name) for every process."""
    out: dict[int, tuple[int, int, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        close = data.rfind(")")
        fields = data[close + 2:].split()
        out[int(name)] = (int(fields[11]) + int(fields[12]), int(fields[2]), data[data.find("(") + 1:close])
    return out


def group_rss(pgid: int) -> int:
    """Resident memory (bytes) of every live process in the group ``pgid`` — a server and its
    uvicorn workers."""
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(int(fields[21]) * page for fields in _live_group_stats(pgid))  # rss, in pages


class OtherLoad:
    """CPU used during a run by processes that are not ours: not this script, not a process group we
    started (servers, wrk, py-spy), not a PostgreSQL backend of our database and not a PostgreSQL
    background process. Backends of other databases (another session's tests, say) do count.
    Reported as a share of all CPUs."""

    def __init__(self, procs: Processes, our_database: str | None = None) -> None:
        self.procs = procs
        self.our_database = our_database
        self.share = float("nan")

    def __enter__(self) -> "OtherLoad":
        try:
            self.before, self.t0 = _proc_ticks(), time.monotonic()
        except OSError:
            self.before = {}
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.before:
            return
        after, elapsed = _proc_ticks(), time.monotonic() - self.t0
        ours = {p.pid for p in self.procs.procs}
        ticks = 0
        for pid, (total, pgid, comm) in after.items():
            if pid == os.getpid() or pgid in ours or (comm == "postgres" and self._ours_in_postgres(pid)):
                continue
            ticks += total - self.before.get(pid, (0, 0, ""))[0]
        cpus = os.cpu_count() or 1
        self.share = ticks / os.sysconf("SC_CLK_TCK") / (elapsed * cpus) if elapsed > 0 else float("nan")

    def _ours_in_postgres(self, pid: int) -> bool:
        # A backend's title is "postgres: 15/main: <user> <database> <host>(<port>) <state>".
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return True
        words = title.split(":", 2)[-1].split()
        is_backend = len(words) >= 3 and ("(" in words[2] or words[2] == "[local]")
        return not is_backend or words[1] == self.our_database


class GroupCPU:
    """What each process of a server's process group did during a run, from ``/proc/<pid>/schedstat``
    (nanoseconds; the main thread of each — the SQLite checkpoint thread is not in it): running, and
    runnable but waiting for a CPU, each as a share of one core. It tells which process sets the
    rate — the check-in writer running ≈ 100 % while the web worker runs a third of that, say — and
    whether a process was starved of a core rather than busy."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.processes: list[tuple[str, float, float]] = []  # (name, running, waiting), busiest first

    def __enter__(self) -> "GroupCPU":
        self.before, self.t0 = _group_schedstat(self.pgid), time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        after, elapsed = _group_schedstat(self.pgid), time.monotonic() - self.t0
        if elapsed <= 0:
            return
        shares = []
        for pid, (name, run, wait) in after.items():
            _, run0, wait0 = self.before.get(pid, (name, 0, 0))
            shares.append((name, (run - run0) / 1e9 / elapsed, (wait - wait0) / 1e9 / elapsed))
        self.processes = sorted(shares, key=lambda p: -p[1])

    def describe(self) -> str:
        """``check-in writer 92% / 3%, serve 37% / 13%`` (running / waiting for a CPU)."""
        return ", ".join(f"{name} {run:.0%} / {wait:.0%}" for name, run, wait in self.processes if run >= 0.01) or "-"


def _group_schedstat(pgid: int) -> dict[int, tuple[str, int, int]]:
    out: dict[int, tuple[str, int, int]] = {}
    for pid, _ in _live_group_members(pgid):
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                run, wait = (int(v) for v in f.read().split()[:2])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        out[pid] = (_process_role(command), run, wait)
    return out


def _process_role(command: str) -> str:
    if "checkin-writer" in command:
        return "check-in writer"
    if "multiprocessing" in command:  # a uvicorn worker spawned by ``serve --workers N``
        return "web worker"
    if " serve" in command:
        return "serve"  # with --workers 1 also the web worker itself
    return command.split()[0].rsplit("/", 1)[-1] if command else "?"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# --------------------------------------------------------------------------- machine-readable output


def write_json(path: str | Path | None, data: dict[str, Any]) -> None:
    """``--json-out FILE`` of every benchmark script: what ``scripts/bench.py`` reads back.
    NaN (an unmeasured figure) is written as null."""
    if not path:
        return
    import json
    import math

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    Path(path).write_text(json.dumps(clean(data), ensure_ascii=False, indent=1, default=str))
