#!/usr/bin/env python3
"""Time and peak memory of the four xlsx reports (``/api/v1/reports/*.xlsx``) at street scale.

A benchmark, not a test. Each engine gets a fresh temp database (SQLite file, or a PostgreSQL
database on 127.0.0.1 that is dropped at the end), migrated with ``python -m server migrate``, then
filled through ``ctx.db`` with bulk inserts:

* ``--members`` active members (default 10 000) over 5 communities × ``--branches`` branches (default 20
  each), with logins and tally rows;
* per branch, over the last 365 days: ``--meetings`` required 三会一课 activities (default 12, the
  types in turn), each attended by ~80 % of the branch (accepted check-ins, +1 ledger entries), ~5 % on
  approved leave, the rest absent (−2 ledger entries);
* 3 volunteer activities per branch, every member with a check-in/check-out pair and an hours record
  (2–4 h, ~5 % still pending), +1 a point per approved hour;
* a pairing for every 5th member with 6 visits (4 approved with +1 each);
* a manual reward for every 10th member.

Then every report is built for the street root (all members) and the whole period (``from``/``to`` =
the last 365 days), in-process through the same service the route calls (DB reads + the xlsx streamed
off the loop by ``core.xlsx.Book``): ``--repeat`` timed runs (median and max), then one run under ``tracemalloc`` for the
peak of Python allocations (it slows the run, so it is not timed), plus the process's ru_maxrss.
Target: ≤ 3 s a report for 10 000 members.

    .venv/bin/python scripts/bench_reports.py --db sqlite
    .venv/bin/python scripts/bench_reports.py --db both --members 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, time as dtime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402
    OtherLoad,
    Processes,
    SetupError,
    build_org_tree,
    ensure_venv,
    insert_members,
    insert_station,
    install_sigterm_handler,
    median,
    print_table,
    temp_database,
    write_json,
)

ensure_venv()

MEETINGS = ["branch_meeting", "party_lecture", "theme_day", "group_meeting", "committee_meeting", "life_meeting"]
CHUNK = 5000
OTHER_LOAD: dict[str, float] = {}  # "reports <engine>" → share of all CPUs other processes used while timing


async def _bulk(ctx: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with ctx.db.transaction():
            await ctx.db.executemany(sql, rows[start:start + CHUNK])


async def fill(ctx: Any, members_wanted: int, branches_per_community: int, meetings: int) -> dict[str, Any]:
    from server.core.timeutil import utcnow

    tz = ctx.settings.tz
    tree = await build_org_tree(ctx, 5, branches_per_community)
    members = await insert_members(ctx, tree.branches, members_wanted)
    station = await insert_station(ctx, tree.root_id, tree.root_path)
    rules = dict(await ctx.db.fetch("SELECT code, id FROM point_rules"))
    now = utcnow().replace(microsecond=0)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=364)
    by_branch: dict[int, list[Any]] = {}
    for m in members:
        by_branch.setdefault(m.org_id, []).append(m)

    activities, checkins, ledger, leaves, hours = [], [], [], [], []
    activity_id = checkin_id = hours_id = 0
    insert_checkin = (
        "INSERT INTO checkins (id, member_id, activity_id, station_id, kind, method, status, scanned_at, received_at,"
        " local_date) VALUES ($1, $2, $3, $4, $5, 'self', 'accepted', $6, $6, $7)"
    )
    for b, (org_id, org_path) in enumerate(tree.branches):
        people = by_branch.get(org_id, [])
        for k in range(meetings):
            activity_id += 1
            day = first + timedelta(days=(k * 365 // meetings + b) % 360)
            starts = datetime.combine(day, dtime(9), tz).astimezone(UTC)
            ends = starts + timedelta(hours=2)
            kind = MEETINGS[k % len(MEETINGS)]
            activities.append((activity_id, kind, f"{kind} #{k + 1}", station, org_id, org_path, starts, ends,
                               starts - timedelta(minutes=30), ends, True, False, "closed", now))
            rule = rules.get(f"attend_{kind}")
            for i, m in enumerate(people):
                bucket = (i * 7 + k * 3 + b) % 20
                if bucket < 16:  # 80 % present
                    checkin_id += 1
                    checkins.append((checkin_id, m.member_id, activity_id, station, "in", starts, day))
                    ledger.append((m.member_id, rule, 1, 1.0, day.year, day, starts, "checkin", checkin_id, "参加活动"))
                elif bucket == 16:  # 5 % on approved leave
                    leaves.append((activity_id, m.member_id, "事假", "approved", 1, now, 1, now))
                else:
                    ledger.append((m.member_id, rules["absence"], 1, -2.0, day.year, day, ends, "absence", activity_id, "缺席"))
        for k in range(3):  # volunteer activities with hours
            activity_id += 1
            day = first + timedelta(days=(k * 120 + b * 3) % 360)
            starts = datetime.combine(day, dtime(8), tz).astimezone(UTC)
            ends = starts + timedelta(hours=5)
            activities.append((activity_id, "volunteer", f"志愿服务 #{k + 1}", station, org_id, org_path, starts, ends,
                               starts - timedelta(minutes=30), ends, False, True, "closed", now))
            for i, m in enumerate(people):
                span = 2 + (i + k) % 3
                checkin_id += 2
                checkins.append((checkin_id - 1, m.member_id, activity_id, station, "in", starts, day))
                checkins.append((checkin_id, m.member_id, activity_id, station, "out", starts + timedelta(hours=span), day))
                hours_id += 1
                pending = (i + k) % 20 == 0
                approved = 0.0 if pending else float(span)
                hours.append((hours_id, m.member_id, activity_id, checkin_id - 1, checkin_id, day, float(span), approved,
                              approved, "pending" if pending else "approved", now))
                if approved:
                    ledger.append((m.member_id, rules["volunteer_hour"], 1, approved, day.year, day, starts, "hours",
                                   hours_id, "志愿服务"))
    await _bulk(ctx, (
        "INSERT INTO activities (id, type, title, description, station_id, org_id, org_path, starts_at, ends_at,"
        " checkin_opens_at, checkin_closes_at, required, records_hours, capacity, status, created_by, created_at)"
        " VALUES ($1, $2, $3, '', $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, NULL, $14)"), activities)
    await _bulk(ctx, insert_checkin, checkins)
    await _bulk(ctx, (
        "INSERT INTO leave_requests (activity_id, member_id, reason, status, created_by, created_at, decided_by, decided_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"), leaves)
    await _bulk(ctx, (
        "INSERT INTO volunteer_hours (id, member_id, activity_id, checkin_in_id, checkin_out_id, local_date, hours,"
        " approved_hours, auto_hours, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"), hours)

    pairings, visits = [], []
    visit_id = 0
    for n, m in enumerate(members[::5], start=1):
        start = first + timedelta(days=n % 60)
        pairings.append((n, m.member_id, "resident", f"对象{n}", "独居老人", "13900000000", start, None, 30, "active", now, now))
        for v in range(6):
            visit_id += 1
            visited = datetime.combine(start + timedelta(days=30 * v + n % 25), dtime(10), tz).astimezone(UTC)
            approved = v < 4
            visits.append((visit_id, n, m.member_id, str(uuid.uuid4()), visited, "home", "上门走访",
                           "approved" if approved else "pending", 1, now))
            if approved:
                day = visited.astimezone(tz).date()
                ledger.append((m.member_id, rules["pairing_visit"], 1, 1.0, day.year, day, visited, "visit", visit_id, "走访"))
    await _bulk(ctx, (
        "INSERT INTO pairings (id, member_id, kind, name, category, contact, start_date, end_date, interval_days, status,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"), pairings)
    await _bulk(ctx, (
        "INSERT INTO pairing_visits (id, pairing_id, member_id, client_uuid, visited_at, mode, content, status, recorded_by,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"), visits)
    for m in members[::10]:
        ledger.append((m.member_id, rules["manual_reward"], 1, 3.0, today.year, today, now, "adjustment", None, "表现突出"))
    await _bulk(ctx, (
        "INSERT INTO points_ledger (member_id, rule_id, rule_version, delta, year, local_date, occurred_at, source_type,"
        " source_id, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $7)"), ledger)
    if ctx.settings.dialect == "postgres":
        for table in ("orgs", "members", "activities", "checkins", "leave_requests", "volunteer_hours", "pairings",
                      "pairing_visits", "points_ledger", "points_tally"):  # as autovacuum would have
            await ctx.db.execute(f"ANALYZE {table}")
    else:
        await ctx.db.execute("ANALYZE")
    return {
        "root_path": tree.root_path, "first": first, "last": today, "members": len(members),
        "counts": {"activities": len(activities), "checkins": len(checkins), "leave": len(leaves), "hours": len(hours),
                   "pairings": len(pairings), "visits": len(visits), "ledger": len(ledger)},
    }


def run_engine(engine: str, args: argparse.Namespace) -> list[list[Any]]:
    with temp_database(engine, "reports") as bench:  # creates/drops PostgreSQL databases with its own loop
        return asyncio.run(_run(engine, bench, args))


async def _run(engine: str, bench: Any, args: argparse.Namespace) -> list[list[Any]]:
    from server.core.auth import Principal
    from server.reports import services
    from server.core.context import open_context

    rows: list[list[Any]] = []
    if True:
        async with open_context(bench.settings()) as ctx:
            t0 = time.perf_counter()
            data = await fill(ctx, args.members, args.branches, args.meetings)
            print(f"[{engine}] filled in {time.perf_counter() - t0:.1f} s: {data['members']} members, "
                  + ", ".join(f"{k} {v}" for k, v in data["counts"].items()), flush=True)
            admin = Principal(user_id=0, display_name="bench", member_id=None, member_org_path=None,
                              admin_paths=(data["root_path"],))
            period = services.resolve_period(ctx, None, data["first"], data["last"])
            reports = [
                ("points.xlsx", services.points_report), ("attendance.xlsx", services.attendance_report),
                ("volunteer-hours.xlsx", services.hours_report), ("pairings.xlsx", services.pairings_report),
            ]
            with OtherLoad(Processes(), bench.pg_name) as other:
                for name, build in reports:
                    times = []
                    size = 0
                    for _ in range(args.repeat):
                        gc.collect()
                        start = time.perf_counter()
                        body, _ = await build(ctx, admin, None, period)
                        times.append(time.perf_counter() - start)
                        size = len(body)
                        del body
                    gc.collect()
                    tracemalloc.start()
                    body, _ = await build(ctx, admin, None, period)
                    _, peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
                    del body
                    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    rows.append([engine, name, f"{median(times):.2f}", f"{max(times):.2f}", f"{size / 1024:.0f}",
                                 f"{peak / 1024 / 1024:.1f}", f"{rss:.0f}"])
                    print(f"[{engine}] {name}: median {median(times):.2f} s", flush=True)
            OTHER_LOAD[f"reports {engine}"] = other.share
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--branches", type=int, default=20, help="branches per community (5 communities)")
    parser.add_argument("--meetings", type=int, default=12, help="required 三会一课 activities per branch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json-out", metavar="FILE", help="also write the figures as JSON (read by scripts/bench.py)")
    args = parser.parse_args()
    install_sigterm_handler()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    engines = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows: list[list[Any]] = []
    try:
        for engine in engines:
            rows += run_engine(engine, args)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    print()
    print_table(["engine", "report", "median s", "max s", "xlsx KiB", "tracemalloc peak MiB", "ru_maxrss MiB"], rows)
    slow = [r for r in rows if float(r[3]) > 3.0]
    print(f"\ntarget ≤ 3 s for {args.members} members: " + ("met" if not slow else f"MISSED by {len(slow)} report(s)"))
    write_json(args.json_out, {
        "benchmark": "reports", "members": args.members, "branches": args.branches, "meetings": args.meetings,
        "repeat": args.repeat, "other_load": OTHER_LOAD,
        "rows": [{"engine": r[0], "report": r[1], "median_s": float(r[2]), "max_s": float(r[3]), "xlsx_kib": float(r[4]),
                  "tracemalloc_peak_mib": float(r[5]), "ru_maxrss_mib": float(r[6])} for r in rows],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
