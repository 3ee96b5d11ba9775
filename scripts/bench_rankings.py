#!/usr/bin/env python3
"""Rankings by period and branch 赛马 at street scale (issue 5): 100k members, 5M ledger rows, 500 branches.

Data: the same bulk load as ``bench_sync.py --part rank`` (5 communities × 100 branches, ``--members``
members, ``--ledger-rows`` entries from a deterministic hash, 80 % this year; ``points_tally`` from the
ledger), then ``points_tally_period`` built by the m0008 backfill statements (months from
``local_date``, quarters from the months) and checked against the ledger, and an ``attendance_tally``
with 4 required activities per branch and month so far this year (≈ 85 % attended, 5 % excused) plus
its ancestor rows. Indexes are built after the load and the tables analysed (steady state).

Timed in-process, median / p90 of ``--repeat`` calls (the first call is shown too):
- ``points.leaderboard`` top 50 at the root (all members) and in one branch, for the year, the
  current quarter and the current month; ``points.rank_in_org`` of the median member (root);
- ``race.branch_race`` for the root (500 branches) for the year, quarter and month;
- ``race.trend`` for the root (500 branches × 12 months).

    .venv/bin/python scripts/bench_rankings.py --db both
    .venv/bin/python scripts/bench_rankings.py --db sqlite --members 20000 --ledger-rows 1000000
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _bench_common import (  # noqa: E402
    BenchDB,
    OtherLoad,
    Processes,
    SetupError,
    ensure_venv,
    install_sigterm_handler,
    print_table,
    temp_database,
    write_json,
)

ensure_venv()

from bench_sync import Report, Row, _db_size, _timed, load_rank_street, run  # noqa: E402

PERIOD_INDEXES = ("ix_tally_period_rank", "ix_tally_period_member")


def _period_sql(year: int, month: int) -> list[str]:
    from migrations.m0008_period_tally import BACKFILL_MONTHS, BACKFILL_QUARTERS, INDEXES

    creates = [sql for name, sql in INDEXES if name in PERIOD_INDEXES]
    branch_rows = (
        "INSERT INTO attendance_tally (org_id, year, month, expected, attended, excused)"
        " SELECT t.org_id, {year}, mm.m, 4 * COUNT(*), (4 * COUNT(*) * 85) / 100, (4 * COUNT(*) * 5) / 100"
        " FROM points_tally t JOIN orgs o ON o.id = t.org_id AND o.kind = 'branch'"
        " CROSS JOIN (SELECT {months}) mm"
        " WHERE t.year = {year} GROUP BY t.org_id, mm.m"
    ).format(year=year, months=" UNION ALL SELECT ".join(f"{m} AS m" if m == 1 else str(m) for m in range(1, month + 1)))
    parents = (
        "INSERT INTO attendance_tally (org_id, year, month, expected, attended, excused)"
        " SELECT o.parent_id, a.year, a.month, SUM(a.expected), SUM(a.attended), SUM(a.excused)"
        " FROM attendance_tally a JOIN orgs o ON o.id = a.org_id WHERE o.kind = '{kind}'"
        " GROUP BY o.parent_id, a.year, a.month"
    )
    return (
        [f"DROP INDEX IF EXISTS {name}" for name in PERIOD_INDEXES]
        + [BACKFILL_MONTHS, BACKFILL_QUARTERS] + creates
        + [branch_rows, parents.format(kind="branch"), parents.format(kind="community_committee")]
    )


async def load_period(db: BenchDB, year: int, month: int) -> None:
    statements = _period_sql(year, month)
    if db.engine == "sqlite":
        import sqlite3

        conn = sqlite3.connect(db.sqlite_path, isolation_level=None)
        try:
            for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -1000000", "temp_store = MEMORY"):
                conn.execute(f"PRAGMA {pragma}")
            conn.execute("BEGIN")
            for sql in statements:
                conn.execute(sql)
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        return
    import asyncpg

    conn = await asyncpg.connect(db.url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        async with conn.transaction():
            for sql in statements:
                await conn.execute(sql)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def bench(db: BenchDB, members: int, ledger_rows: int, repeat: int, report: Report) -> None:
    from server.core.auth import Principal
    from server.points import race
    from server.points import services as points
    from server.core.context import open_context

    settings = db.settings()
    t_start = time.perf_counter()
    tree, year, _ = await load_rank_street(db, members, ledger_rows)
    local_now = points.utcnow().astimezone(settings.tz)
    t_loaded = time.perf_counter()
    await load_period(db, year, local_now.month)
    t_period = time.perf_counter()
    report.notes.append(
        f"[{db.engine}] data: {members:,} members, {ledger_rows:,} ledger rows; ledger+year tally {t_loaded - t_start:.0f}s,"
        f" period tally + attendance {t_period - t_loaded:.0f}s; database {await _db_size(db)}"
    )
    month = local_now.month
    quarter = points.quarter_of(month)
    async with open_context(settings) as ctx:
        q = ctx.db.fetchval
        period_rows = int(await q("SELECT COUNT(*) FROM points_tally_period"))
        checks = []
        for label, code, first, last in (("month", month, month, month), ("quarter", 20 + quarter, 3 * quarter - 2, 3 * quarter)):
            tally = float(await q("SELECT COALESCE(SUM(earned), 0) FROM points_tally_period WHERE org_id = $1 AND year = $2"
                                  " AND period = $3", tree.root_id, year, code))
            start = points.Period(year, None, first).local_dates()[0]
            end = points.Period(year, None, last).local_dates()[1]
            ledger = float(await q("SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE year = $1 AND local_date >= $2"
                                   " AND local_date < $3", year, start, end))
            checks.append((label, tally, ledger))
        ok = all(abs(t - l) < 1e-6 for _, t, l in checks)
        report.failed |= not ok
        report.notes.append(f"[{db.engine}] period tally: {period_rows:,} rows; " + "; ".join(
            f"root {label} Σ tally {t:,.0f} == Σ ledger {l:,.0f}" for label, t, l in checks) + f": {'OK' if ok else 'FAIL'}")

        root_count = await points.members_ranked(ctx, tree.root_id, year)
        median_row = await ctx.db.fetchrow(
            "SELECT member_id, earned FROM points_tally_period WHERE org_id = $1 AND year = $2 AND period = $3"
            " ORDER BY earned, member_id LIMIT 1 OFFSET $4", tree.root_id, year, month, root_count // 2,
        )
        median_earned = float(median_row[0 + 1])
        branch_id = tree.branches[0][0]
        admin = Principal(user_id=0, display_name="bench", member_id=None, member_org_path=None,
                          admin_paths=(tree.root_path,))
        periods = [("year", points.Period(year)), (f"Q{quarter}", points.Period(year, quarter, None)),
                   (f"month {month}", points.Period(year, None, month))]
        cases: list[tuple[str, Any]] = []
        for label, period in periods:
            cases.append((f"leaderboard top 50, root ({root_count:,}), {label}",
                          lambda p=period: points.leaderboard(ctx, tree.root_id, year, 50, p.code)))
        for label, period in periods[1:]:
            cases.append((f"leaderboard top 50, branch, {label}",
                          lambda p=period: points.leaderboard(ctx, branch_id, year, 50, p.code)))
        cases.append((f"rank of median member, root, month {month}",
                       lambda: points.rank_in_org(ctx, tree.root_id, year, median_earned, month)))
        for label, period in periods:
            cases.append((f"赛马 root ({len(tree.branches)} branches), {label}",
                          lambda p=period: race.branch_race(ctx, admin, tree.root_id, p)))
        cases.append((f"trend root ({len(tree.branches)} branches × 12), {year}",
                      lambda: race.trend(ctx, admin, tree.root_id, year)))

        def note(result: Any) -> str:
            if isinstance(result, int):
                return f"rank {result}"
            if isinstance(result, list):
                return f"{len(result)} rows, top earned {result[0]['earned']:g}"
            if hasattr(result, "branches") and hasattr(result, "totals"):
                return f"{len(result.branches)} branches, Σ {sum(result.totals):,.0f}"
            bands: dict[str, int] = {}
            for b in result.branches:
                bands[b.band] = bands.get(b.band, 0) + 1
            return f"{len(result.branches)} branches, bands {bands}, top score {result.branches[0].score}"

        with OtherLoad(Processes(), db.pg_name) as other:
            for label, fn in cases:
                med, p90, first, result = await _timed(fn, repeat)
                report.rows.append(Row(label, db.engine, med, p90, first, note(result)))
        report.notes.append(f"[{db.engine}] queries: other processes used {other.share:.0%} of the CPUs meanwhile")
        report.other_load[f"rankings {db.engine}"] = other.share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--ledger-rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON (read by scripts/bench.py)")
    args = parser.parse_args()
    if args.members < 500 or args.ledger_rows < 1:
        parser.error("need --members >= 500 (one per branch) and --ledger-rows >= 1")
    install_sigterm_handler()
    for noisy in ("httpx", "piccolo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    report = Report()
    try:
        for engine in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
            print(f"[{engine}] loading {args.members:,} members and {args.ledger_rows:,} ledger rows ...", flush=True)
            with temp_database(engine, "rankings") as db:
                run(bench(db, args.members, args.ledger_rows, args.repeat, report))
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print()
    print_table(
        ["what", "db", "median ms", "p90 ms", "first ms", "note"],
        [[r.what, r.engine, f"{r.median_ms:.2f}", f"{r.p90_ms:.2f}", f"{r.first_ms:.2f}", r.note] for r in report.rows],
    )
    print()
    for line in report.notes:
        print(line)
    write_json(args.json_out, report.json(benchmark="rankings", members=args.members, ledger_rows=args.ledger_rows,
                                          repeat=args.repeat))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
