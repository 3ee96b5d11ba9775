#!/usr/bin/env python3
"""Server time of a full offline sync, and of leaderboard / rank queries at street scale.

(a) sync — ``CheckinProcessor(ctx).process(actor, items)`` for one member's batch of 500 distinct,
    valid items (500 different open ``branch_meeting`` activities, so every item is accepted and
    writes a check-in, an attempt, a ledger entry and the tally rows). This is what the server does
    for one ``POST /api/v1/checkins/sync`` of a phone that was offline: each item is its own write
    unit, in ``scanned_at`` order. Timed in-process (no HTTP), a few times with a fresh member each
    time; the first run also pays the Ed25519 check of 500 QR tokens never seen before (later runs
    hit the token cache). Then the same through the whole app (``httpx.ASGITransport``: routing,
    auth, msgspec decoding of the 500 items, response encoding), again with fresh members.

    Floor, same run and database: the rows such a sync writes — 500 check-ins, 500 attempts,
    500 ledger entries and the member's year and month/quarter tally rows — inserted for another
    fresh member in one transaction with nothing but bulk writes — sqlite3 ``executemany`` (the app's
    ``synchronous``, foreign keys on); on PostgreSQL asyncpg ``COPY`` (its fastest way in) for the
    three tables and ``executemany`` for the tally upserts — into the same tables and indexes, no
    reads or checks but the ids of the new check-ins. Reported as sync time ÷ floor time.

(b) rank — ``points.services.leaderboard(ctx, org_id, year, 50)`` and ``rank_in_org(...)`` with
    ``--members`` members (default 100k) spread over 5 communities × 100 branches and
    ``--ledger-rows`` ledger entries (default 5M; 80 % this year, 20 % last year), with
    ``points_tally`` rows per member per ancestor org and year equal to the ledger sums (checked).
    Timed for the street root (all members) and for one branch, rank for the member with the median
    score, median of ``--repeat`` runs (default 50). The data is bulk-generated with SQL
    (recursive CTE on SQLite with the journal off, ``generate_series`` on PostgreSQL with FK triggers
    off) from a deterministic hash, so both engines hold the same rows; secondary indexes are built
    after the load and the tables analysed, as they would be in a steady-state database.

Everything runs on uvloop (when installed), like the server. Each engine gets a temp SQLite file or a fresh PostgreSQL database (127.0.0.1), migrated with
``python -m server migrate`` and removed at the end, also on Ctrl-C.

    .venv/bin/python scripts/bench_sync.py --db both
    .venv/bin/python scripts/bench_sync.py --db sqlite --part rank --members 20000 --ledger-rows 500000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
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
    insert_members,
    insert_open_activities,
    insert_station,
    install_sigterm_handler,
    median,
    percentile,
    print_table,
    temp_database,
    write_json,
)

ensure_venv()


@dataclass
class Row:
    what: str
    engine: str
    median_ms: float
    p90_ms: float = float("nan")
    first_ms: float = float("nan")
    note: str = ""
    key: str = ""  # stable name for scripts/bench.py (sync, sync_http, sync_floor, …)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: bool = False
    other_load: dict[str, float] = field(default_factory=dict)  # "<part> <engine>" → share of all CPUs

    def json(self, **extra: Any) -> dict[str, Any]:
        """What ``--json-out`` writes (read by ``scripts/bench.py``)."""
        return {
            **extra, "failed": self.failed, "notes": self.notes, "other_load": self.other_load,
            "rows": [{"what": r.what, "engine": r.engine, "key": r.key, "median_ms": r.median_ms, "p90_ms": r.p90_ms,
                      "first_ms": r.first_ms, "note": r.note} for r in self.rows],
        }


def ms(seconds: float) -> float:
    return seconds * 1000.0


# =========================================================================== (a) sync


async def bench_sync(db: BenchDB, items_per_batch: int, runs: int, http_runs: int, report: Report) -> None:
    import httpx
    from asgi_lifespan import LifespanManager

    from server.app import create_app
    from server.checkins.services import Actor, CheckinProcessor, Item
    from server.core.timeutil import utcnow
    from server.core.context import open_context

    settings = db.settings()
    async with open_context(settings) as ctx:
        tree = await build_org_tree(ctx, communities=1, branches_per_community=2)
        people = await insert_members(ctx, tree.branches, runs + http_runs + runs)
        station = await insert_station(ctx, tree.root_id, tree.root_path)
        acts = await insert_open_activities(ctx, items_per_batch, station, tree.root_id, tree.root_path)

    app = create_app(settings)
    async with LifespanManager(app):
        ctx = app.state.ctx
        qrs = [activity_qr(ctx, a, station) for a in acts]  # signed by the app's key ring
        start = utcnow().replace(microsecond=0) - timedelta(minutes=60)  # scanned offline in the last hour

        def batch() -> list[Item]:
            return [Item(client_uuid=uuid.uuid4().hex, token=qrs[i], scanned_at=start + timedelta(seconds=5 * i))
                    for i in range(items_per_batch)]

        async def in_process(member_id: int) -> float:
            items = batch()
            t0 = time.perf_counter()
            results = await processor.process(Actor(member_id=member_id), items)
            elapsed = time.perf_counter() - t0
            bad = [r for r in results if r.status != "accepted"]
            if bad:
                raise SetupError(f"{len(bad)} items not accepted, e.g. {bad[0]}")
            return elapsed

        async def over_http(user_id: int) -> float:
            token, _ = ctx.tokens.access_token(user_id, 30)
            body = {"items": [
                {"client_uuid": i.client_uuid, "token": i.token, "scanned_at": i.scanned_at.isoformat(), "kind": "in"}
                for i in batch()
            ]}
            t0 = time.perf_counter()
            response = await client.post("/api/v1/checkins/sync", json=body, headers={"authorization": f"Bearer {token}"})
            elapsed = time.perf_counter() - t0
            if response.status_code != 200:
                raise SetupError(f"sync returned {response.status_code}: {response.text[:300]}")
            statuses = {r["status"] for r in response.json()["results"]}
            if statuses != {"accepted"}:
                raise SetupError(f"sync results not all accepted: {statuses}")
            return elapsed

        processor = CheckinProcessor(ctx)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            floor_people = people[runs + http_runs:]
            with OtherLoad(Processes(), db.pg_name) as other:
                timings = [await in_process(m.member_id) for m in people[:runs]]
                http_timings = [await over_http(m.user_id) for m in people[runs:runs + http_runs]]
                floor_timings = [await raw_floor(db, ctx, m, acts, qrs, station, start) for m in floor_people]
        report.notes.append(f"[{db.engine}] sync: other processes used {other.share:.0%} of the CPUs meanwhile")
        report.other_load[f"sync {db.engine}"] = other.share
        report.rows.append(Row(
            f"sync {items_per_batch} items, in-process", db.engine, ms(median(timings)),
            first_ms=ms(timings[0]),
            note=f"runs {', '.join(f'{ms(t):.0f}' for t in timings)} ms; "
                 f"{ms(median(timings)) / items_per_batch:.2f} ms/item",
            key="sync",
        ))
        if http_timings:
            report.rows.append(Row(
                f"sync {items_per_batch} items, HTTP (ASGITransport)", db.engine, ms(median(http_timings)),
                first_ms=ms(http_timings[0]), note=f"runs {', '.join(f'{ms(t):.0f}' for t in http_timings)} ms",
                key="sync_http",
            ))
        driver = "sqlite3 executemany" if db.engine == "sqlite" else "asyncpg COPY"
        report.rows.append(Row(
            f"floor: the same rows, plain {driver}", db.engine, ms(median(floor_timings)),
            first_ms=ms(floor_timings[0]),
            note=f"runs {', '.join(f'{ms(t):.1f}' for t in floor_timings)} ms; "
                 f"sync ÷ floor {median(timings) / median(floor_timings):.1f}",
            key="sync_floor",
        ))
        rows = int(await ctx.db.fetchval("SELECT COUNT(*) FROM checkins WHERE status = 'accepted'"))
        ledger = int(await ctx.db.fetchval("SELECT COUNT(*) FROM points_ledger"))
        expected = items_per_batch * (len(timings) + len(http_timings) + len(floor_timings))
        ok = rows == ledger == expected
        report.failed |= not ok
        report.notes.append(f"[{db.engine}] sync check: {rows} accepted check-ins, {ledger} ledger rows,"
                            f" expected {expected}: {'OK' if ok else 'FAIL'}")


async def raw_floor(db: BenchDB, ctx: Any, member: Any, acts: list[Any], qrs: list[str], station: int,
                    start: Any) -> float:
    """Seconds to write what a sync of ``len(acts)`` items writes for ``member``, with nothing but
    ``executemany`` in one transaction (rows built before the clock starts)."""
    from server.core.sql import path_ids
    from server.core.timeutil import utcnow
    from server.points.services import QUARTER_BASE, quarter_of

    tz = ctx.settings.tz
    rule_id, rule_version, rule_name = (await ctx.db.fetchrow(
        "SELECT id, version, name FROM point_rules WHERE code = 'attend_branch_meeting'"))
    now = utcnow()
    scans = [start + timedelta(seconds=5 * i) for i in range(len(acts))]
    local = [s.astimezone(tz) for s in scans]
    checkins = [(member.member_id, a.activity_id, station, "in", "self", "accepted", None, s, now, d.date(), None, None)
                for a, s, d in zip(acts, scans, local)]
    org_ids = path_ids(member.org_path)
    year, month = local[0].year, local[0].month
    delta = float(len(acts))
    tally = [(org_id, year, member.member_id, delta) for org_id in org_ids]
    period = [(org_id, year, p, member.member_id, delta) for org_id in org_ids for p in (month, QUARTER_BASE + quarter_of(month))]

    def dependent(ids: dict[int, int]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        attempts = [(uuid.uuid4().hex, member.member_id, qr, "ac", "in", "self", None, station, a.activity_id, None, s,
                     now, None, None, None, "accepted", None, ids[a.activity_id], 1.0, "签到成功，积分 +1")
                    for a, qr, s in zip(acts, qrs, scans)]
        ledger = [(member.member_id, rule_id, rule_version, 1.0, d.year, d.date(), s, "checkin", ids[a.activity_id],
                   None, rule_name, None, now) for a, s, d in zip(acts, scans, local)]
        return attempts, ledger

    insert_checkin = ("INSERT INTO checkins (member_id, activity_id, station_id, kind, method, status, reason, scanned_at,"
                      " received_at, local_date, staff_user_id, kiosk_id) VALUES ({})")
    insert_attempt = ("INSERT INTO checkin_attempts (client_uuid, member_id, token, token_type, kind, method, staff_user_id,"
                      " station_id, activity_id, kiosk_id, scanned_at, received_at, lat, lng, accuracy_m, status, reason,"
                      " checkin_id, points_awarded, message) VALUES ({})")
    insert_ledger = ("INSERT INTO points_ledger (member_id, rule_id, rule_version, delta, year, local_date, occurred_at,"
                     " source_type, source_id, reverses_id, reason, created_by, created_at) VALUES ({})")
    upsert_tally = ("INSERT INTO points_tally (org_id, year, member_id, earned) VALUES ({})"
                    " ON CONFLICT (org_id, year, member_id) DO UPDATE SET earned = points_tally.earned + excluded.earned")
    upsert_period = ("INSERT INTO points_tally_period (org_id, year, period, member_id, earned) VALUES ({})"
                     " ON CONFLICT (org_id, year, period, member_id) DO UPDATE"
                     " SET earned = points_tally_period.earned + excluded.earned")
    ids_sql = "SELECT activity_id, id FROM checkins WHERE member_id = {}"

    if db.engine == "sqlite":
        import sqlite3

        def q(sql: str, n: int) -> str:
            return sql.format(", ".join("?" * n))

        conn = sqlite3.connect(db.sqlite_path, isolation_level=None, timeout=30)
        try:
            conn.execute(f"PRAGMA synchronous = {ctx.settings.sqlite_synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(q(insert_checkin, 12), checkins)
            attempts, ledger = dependent(dict(conn.execute(ids_sql.format("?"), (member.member_id,)).fetchall()))
            conn.executemany(q(insert_attempt, 20), attempts)
            conn.executemany(q(insert_ledger, 13), ledger)
            conn.executemany(q(upsert_tally, 4), tally)
            conn.executemany(q(upsert_period, 5), period)
            conn.execute("COMMIT")
            return time.perf_counter() - t0
        finally:
            conn.close()

    import asyncpg

    def d(sql: str, n: int) -> str:
        return sql.format(", ".join(f"${i + 1}" for i in range(n)))

    def columns(sql: str) -> list[str]:
        return [c.strip() for c in sql[sql.index("(") + 1:sql.index(")")].split(",")]

    conn = await asyncpg.connect(db.url)
    try:
        t0 = time.perf_counter()
        async with conn.transaction():  # COPY: PostgreSQL's fastest way in for many rows
            await conn.copy_records_to_table("checkins", records=checkins, columns=columns(insert_checkin))
            attempts, ledger = dependent(dict(await conn.fetch(ids_sql.format("$1"), member.member_id)))
            await conn.copy_records_to_table("checkin_attempts", records=attempts, columns=columns(insert_attempt))
            await conn.copy_records_to_table("points_ledger", records=ledger, columns=columns(insert_ledger))
            await conn.executemany(d(upsert_tally, 4), tally)
            await conn.executemany(d(upsert_period, 5), period)
        return time.perf_counter() - t0
    finally:
        await conn.close()


# =========================================================================== (b) leaderboard / rank

BULK_TABLES = ("points_ledger", "points_tally")  # their migration indexes are dropped for the load, rebuilt after

# One ledger row per i: member, rule and day all come from a multiplicative hash of i, so the two
# engines generate identical data. 70 % meeting attendance (+1), 20 % volunteer hours (+1…+4),
# 10 % absence (−2); every 5th row falls in last year.
_LEDGER_SELECT = """
SELECT {first_member} + h % {members},
       CASE WHEN r < 7 THEN {rule_meet} WHEN r < 9 THEN {rule_hours} ELSE {rule_absence} END,
       1,
       CASE WHEN r < 7 THEN 1.0 WHEN r < 9 THEN 1.0 + h % 4 ELSE -2.0 END,
       y, {local_date}, {occurred_at},
       CASE WHEN r < 7 THEN 'checkin' WHEN r < 9 THEN 'hours' ELSE 'absence' END,
       i, NULL,
       CASE WHEN r < 7 THEN '参加支部党员大会' WHEN r < 9 THEN '志愿服务（每小时）' ELSE '无故缺席必参活动' END,
       NULL, {occurred_at}
FROM (
    SELECT i, h, (h / {members}) % 10 AS r,
           CASE WHEN i % 5 = 0 THEN {prev_year} ELSE {year} END AS y,
           CASE WHEN i % 5 = 0 THEN (h / ({members} * 10)) % 365 ELSE (h / ({members} * 10)) % {days_this_year} END AS d
    FROM (SELECT i, (i * 2654435761) % 4294967296 AS h FROM {series}) AS hashed
) AS s
"""
_LEDGER_COLUMNS = ("member_id, rule_id, rule_version, delta, year, local_date, occurred_at, source_type, source_id,"
                   " reverses_id, reason, created_by, created_at")


def _tally_sql(year: int) -> list[str]:
    """Tally = ledger sums per member and year, one row per ancestor org (branch, community, root),
    plus a zero row this year for members without entries (what ``ensure_member_tally`` does)."""
    insert = "INSERT INTO points_tally (org_id, year, member_id, earned)"
    return [
        "CREATE TEMP TABLE bench_sums AS"
        " SELECT member_id, year, SUM(delta) AS earned FROM points_ledger GROUP BY member_id, year",
        "CREATE INDEX bench_sums_member ON bench_sums (member_id, year)",
        f"INSERT INTO bench_sums (member_id, year, earned) SELECT m.id, {year}, 0 FROM members m WHERE NOT EXISTS"
        f" (SELECT 1 FROM bench_sums s WHERE s.member_id = m.id AND s.year = {year})",
        f"{insert} SELECT m.org_id, s.year, s.member_id, s.earned FROM bench_sums s JOIN members m ON m.id = s.member_id",
        f"{insert} SELECT b.parent_id, s.year, s.member_id, s.earned FROM bench_sums s"
        " JOIN members m ON m.id = s.member_id JOIN orgs b ON b.id = m.org_id",
        f"{insert} SELECT c.parent_id, s.year, s.member_id, s.earned FROM bench_sums s"
        " JOIN members m ON m.id = s.member_id JOIN orgs b ON b.id = m.org_id JOIN orgs c ON c.id = b.parent_id",
        "DROP TABLE bench_sums",
    ]


def _bulk_indexes() -> list[tuple[str, str]]:
    """(name, CREATE INDEX …) of the migration indexes on the bulk-loaded tables."""
    from migrations.m0002_indexes import INDEXES

    return [(name, sql) for name, sql in INDEXES if any(f" ON {table} " in sql for table in BULK_TABLES)]


@dataclass
class LedgerPlan:
    rows: int
    members: int
    first_member: int
    rules: dict[str, int]
    year: int
    days_this_year: int

    def params(self) -> dict[str, Any]:
        return {
            "first_member": self.first_member, "members": self.members, "rule_meet": self.rules["attend_branch_meeting"],
            "rule_hours": self.rules["volunteer_hour"], "rule_absence": self.rules["absence"], "year": self.year,
            "prev_year": self.year - 1, "days_this_year": self.days_this_year,
        }


def load_sqlite(db: BenchDB, plan: LedgerPlan) -> None:
    import sqlite3

    conn = sqlite3.connect(db.sqlite_path, isolation_level=None)
    try:
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -1000000", "temp_store = MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")
        for name, _ in _bulk_indexes():
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        local_date = (
            "date(CASE WHEN i % 5 = 0 THEN '{prev_year}-01-01' ELSE '{year}-01-01' END, '+' || d || ' days')"
        ).format(**plan.params())
        select = _LEDGER_SELECT.format(
            **plan.params(), local_date=local_date, occurred_at=f"({local_date} || ' 01:00:00+00:00')",
            series=f"(WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {plan.rows})"
                   " SELECT i FROM seq) AS series",
        )
        conn.execute(f"INSERT INTO points_ledger ({_LEDGER_COLUMNS}) {select}")
        for sql in _tally_sql(plan.year):
            conn.execute(sql)
        for _, sql in _bulk_indexes():
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


async def load_postgres(db: BenchDB, plan: LedgerPlan) -> None:
    import asyncpg

    conn = await asyncpg.connect(db.url)
    try:
        # (not synchronous_commit = off: VACUUM could then not mark the fresh pages all-visible)
        await conn.execute("SET maintenance_work_mem = '512MB'")
        try:  # skip FK trigger checks during the bulk load (needs a superuser; otherwise just slower)
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.PostgresError:
            pass
        async with conn.transaction():
            for name, _ in _bulk_indexes():
                await conn.execute(f"DROP INDEX IF EXISTS {name}")
            local_date = (
                "(CASE WHEN i % 5 = 0 THEN date '{prev_year}-01-01' ELSE date '{year}-01-01' END + d::int)"
            ).format(**plan.params())
            select = _LEDGER_SELECT.format(
                **plan.params(), local_date=local_date, occurred_at=f"(({local_date} + time '01:00') AT TIME ZONE 'UTC')",
                series=f"generate_series(1::bigint, {plan.rows}::bigint) AS series(i)",
            )
            await conn.execute(f"INSERT INTO points_ledger ({_LEDGER_COLUMNS}) {select}")
            for sql in _tally_sql(plan.year):
                await conn.execute(sql)
            for _, sql in _bulk_indexes():
                await conn.execute(sql)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _timed(fn: Any, repeat: int) -> tuple[float, float, float, Any]:
    """(median, p90, first) in ms over ``repeat`` awaited calls, and the last result."""
    samples = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await fn()
        samples.append(time.perf_counter() - t0)
    first = samples[0]
    samples.sort()
    return ms(median(samples)), ms(percentile(samples, 90)), ms(first), result


async def load_rank_street(db: BenchDB, members: int, ledger_rows: int) -> tuple[Any, int, float]:
    """5 communities × 100 branches, ``members`` members, ``ledger_rows`` ledger entries this year with
    their year tally (shared with bench_rankings.py). Returns (org tree, year, seconds the members took)."""
    from server.points import services as points
    from server.core.context import open_context

    t_start = time.perf_counter()
    async with open_context(db.settings()) as ctx:
        tree = await build_org_tree(ctx, communities=5, branches_per_community=100)
        await insert_members(ctx, tree.branches, members, with_users=False, zero_tally=False, chunk=50_000)
        first_member = int(await ctx.db.fetchval("SELECT MIN(id) FROM members"))
        rules = {code: int(i) for code, i in await ctx.db.fetch("SELECT code, id FROM point_rules")}
        year = points.current_year(ctx)
    plan = LedgerPlan(ledger_rows, members, first_member, rules, year, max(1, time.gmtime().tm_yday - 1))
    t_members = time.perf_counter()
    if db.engine == "sqlite":
        load_sqlite(db, plan)
    else:
        await load_postgres(db, plan)
    return tree, year, t_members - t_start


async def bench_rank(db: BenchDB, members: int, ledger_rows: int, repeat: int, report: Report) -> None:
    from server.points import services as points
    from server.core.context import open_context

    settings = db.settings()
    t_start = time.perf_counter()
    tree, year, members_s = await load_rank_street(db, members, ledger_rows)
    t_members = t_start + members_s
    t_loaded = time.perf_counter()
    size = await _db_size(db)
    report.notes.append(
        f"[{db.engine}] rank data: {members:,} members, {ledger_rows:,} ledger rows; orgs+members "
        f"{t_members - t_start:.0f}s, ledger+tally+indexes+analyze {t_loaded - t_members:.0f}s; database {size}"
    )

    async with open_context(settings) as ctx:
        q = ctx.db.fetchval
        tally_rows = int(await q("SELECT COUNT(*) FROM points_tally"))
        ledger_sum = float(await q("SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE year = $1", year))
        root_sum = float(await q("SELECT COALESCE(SUM(earned), 0) FROM points_tally WHERE org_id = $1 AND year = $2",
                                 tree.root_id, year))
        root_count = int(await q("SELECT COUNT(*) FROM points_tally WHERE org_id = $1 AND year = $2", tree.root_id, year))
        ok = abs(ledger_sum - root_sum) < 1e-6 and root_count == members
        report.failed |= not ok
        report.notes.append(
            f"[{db.engine}] tally check: {tally_rows:,} tally rows; root {year}: {root_count:,} members,"
            f" Σ tally {root_sum:,.0f} == Σ ledger {ledger_sum:,.0f}: {'OK' if ok else 'FAIL'}"
        )
        # The member with the median score at the root, and that member's branch.
        median_row = await ctx.db.fetchrow(
            "SELECT member_id, earned FROM points_tally WHERE org_id = $1 AND year = $2"
            " ORDER BY earned, member_id LIMIT 1 OFFSET $3",
            tree.root_id, year, root_count // 2,
        )
        member_id, earned = int(median_row[0]), float(median_row[1])
        branch_id = int(await q("SELECT org_id FROM members WHERE id = $1", member_id))
        branch_size = int(await q("SELECT COUNT(*) FROM points_tally WHERE org_id = $1 AND year = $2", branch_id, year))

        cases = [
            (f"leaderboard top 50, root ({root_count:,} members)", lambda: points.leaderboard(ctx, tree.root_id, year, 50)),
            (f"leaderboard top 50, branch ({branch_size} members)", lambda: points.leaderboard(ctx, branch_id, year, 50)),
            ("rank of median member, root", lambda: points.rank_in_org(ctx, tree.root_id, year, earned)),
            ("rank of median member, branch", lambda: points.rank_in_org(ctx, branch_id, year, earned)),
        ]

        async def time_cases(suffix: str, selected: list[tuple[str, Any]]) -> None:
            for label, fn in selected:
                med, p90, first, result = await _timed(fn, repeat)
                note = f"rank {result}" if isinstance(result, int) else f"{len(result)} rows, top earned {result[0]['earned']:g}"
                report.rows.append(Row(label + suffix, db.engine, med, p90, first, note))

        with OtherLoad(Processes(), db.pg_name) as other:
            await time_cases("", cases)
            # Between two (auto)vacuums check-ins keep updating tally rows; on PostgreSQL that leaves
            # dead index entries and pages not all-visible, so index-only scans visit the heap.
            async with ctx.db.transaction():
                await ctx.db.execute("UPDATE points_tally SET earned = earned WHERE year = $1 AND member_id % 10 = 0", year)
            await time_cases(" (after 10% tally updates)", [cases[0], cases[2]])
        report.notes.append(f"[{db.engine}] rank queries: other processes used {other.share:.0%} of the CPUs meanwhile")
        report.other_load[f"rank {db.engine}"] = other.share


async def _db_size(db: BenchDB) -> str:
    if db.engine == "sqlite":
        total = sum(p.stat().st_size for p in db.sqlite_path.parent.glob(db.sqlite_path.name + "*"))
        return f"{total / 2**20:,.0f} MiB"
    import asyncpg

    conn = await asyncpg.connect(db.url)
    try:
        return str(await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))"))
    finally:
        await conn.close()


# =========================================================================== main


def run(coro: Any) -> Any:
    """On uvloop when installed, like ``python -m server serve``."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--part", choices=["sync", "rank", "both"], default="both")
    parser.add_argument("--items", type=int, default=500, help="items per sync batch (default 500, the API maximum)")
    parser.add_argument("--runs", type=int, default=5, help="in-process sync runs, each with a fresh member (default 5)")
    parser.add_argument("--http-runs", type=int, default=3, help="sync runs through the app over ASGI (default 3)")
    parser.add_argument("--members", type=int, default=100_000, help="members for the rank part (default 100000)")
    parser.add_argument("--ledger-rows", type=int, default=5_000_000, help="ledger rows for the rank part (default 5M)")
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per rank query (default 50)")
    parser.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON (read by scripts/bench.py)")
    args = parser.parse_args()
    if args.members < 500 or args.ledger_rows < 1 or args.runs < 1:
        parser.error("need --members >= 500 (one per branch), --ledger-rows >= 1, --runs >= 1")
    engines = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    install_sigterm_handler()
    for noisy in ("httpx", "piccolo"):  # create_app() turns on INFO logging; keep the output to the figures
        logging.getLogger(noisy).setLevel(logging.WARNING)

    report = Report()
    try:
        for engine in engines:
            if args.part in ("sync", "both"):
                print(f"[{engine}] sync: {args.runs} + {args.http_runs} batches of {args.items} items ...", flush=True)
                with temp_database(engine, "sync") as db:
                    run(bench_sync(db, args.items, args.runs, args.http_runs, report))
            if args.part in ("rank", "both"):
                print(f"[{engine}] rank: loading {args.members:,} members and {args.ledger_rows:,} ledger rows ...",
                      flush=True)
                with temp_database(engine, "rank") as db:
                    run(bench_rank(db, args.members, args.ledger_rows, args.repeat, report))
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

    print()
    print_table(
        ["what", "db", "median ms", "p90 ms", "first ms", "note"],
        [[r.what, r.engine, f"{r.median_ms:.2f}", "-" if r.p90_ms != r.p90_ms else f"{r.p90_ms:.2f}",
          f"{r.first_ms:.2f}", r.note] for r in report.rows],
    )
    print()
    for note in report.notes:
        print(note)
    write_json(args.json_out, report.json(benchmark="sync", items=args.items, members=args.members,
                                          ledger_rows=args.ledger_rows, part=args.part))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
