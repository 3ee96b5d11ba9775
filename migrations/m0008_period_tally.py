"""Rankings by quarter and month, branch 赛马 attendance, and the history of point-rule versions.

- ``points_tally_period``: points earned per (ancestor org, year, period, member), where ``period``
  is the local month 1–12 or the quarter 21–24 (Q1–Q4). Like ``points_tally`` (the year) it is kept
  in the same write unit as the ledger (one multi-row upsert per entry batch) and holds rows for
  active members only; a member without entries in a period has no row (counts as 0). Top-N and
  rank in any subtree and period are index range reads on ``ix_tally_period_rank``.
  Backfilled from the ledger: the months from ``local_date``, the quarters from the months; the
  ancestor orgs are taken from the member's ``points_tally`` rows of that year.
- ``attendance_tally``: required-activity attendance per (ancestor org, year, local month of the
  activity's start): ``expected`` members, ``attended`` (accepted or pending check-in), ``excused``
  (approved leave, not attended). Written when a required activity is closed and moved by later
  leave approvals and review decisions. Backfilled for closed required activities;
  ``activities.attendance_counted`` marks the activities counted (so a change is only applied to a
  counted one).
- ``point_rule_versions``: one row per version of a rule (what it said, who changed it, when);
  ledger entries keep ``rule_id`` + ``rule_version``, so the rule an entry used can always be read.

Raw SQL, the same on both engines (no foreign keys on the derived tally tables: they are rebuilt
from the ledger, never the source of truth).
"""

import os
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-21T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "per-member period (month/quarter) tally, attendance tally, rule versions"

TABLES = [
    (
        "points_tally_period",
        'CREATE TABLE "points_tally_period" ("org_id" INTEGER NOT NULL, "year" INTEGER NOT NULL,'
        ' "period" INTEGER NOT NULL, "member_id" INTEGER NOT NULL, "earned" DOUBLE PRECISION NOT NULL DEFAULT 0,'
        ' PRIMARY KEY ("org_id", "year", "period", "member_id"))',
    ),
    (
        "attendance_tally",
        'CREATE TABLE "attendance_tally" ("org_id" INTEGER NOT NULL, "year" INTEGER NOT NULL,'
        ' "month" INTEGER NOT NULL, "expected" INTEGER NOT NULL DEFAULT 0, "attended" INTEGER NOT NULL DEFAULT 0,'
        ' "excused" INTEGER NOT NULL DEFAULT 0, PRIMARY KEY ("org_id", "year", "month"))',
    ),
    (
        "point_rule_versions",
        'CREATE TABLE "point_rule_versions" ({pk}, "rule_id" INTEGER NOT NULL REFERENCES "point_rules" ("id")'
        ' ON DELETE RESTRICT, "version" INTEGER NOT NULL, "name" VARCHAR(100) NOT NULL,'
        ' "category" VARCHAR(16) NOT NULL, "trigger" VARCHAR(32) NOT NULL, "points" DOUBLE PRECISION NOT NULL,'
        ' "cap_day" DOUBLE PRECISION, "cap_month" DOUBLE PRECISION, "cap_year" DOUBLE PRECISION,'
        ' "needs_approval" BOOLEAN NOT NULL, "valid_from" DATE, "valid_to" DATE, "status" VARCHAR(16) NOT NULL,'
        ' "changed_by" INTEGER, "changed_at" TIMESTAMPTZ NOT NULL)',
    ),
]
INDEXES = [
    (
        "ix_tally_period_rank",
        "CREATE INDEX ix_tally_period_rank ON points_tally_period (org_id, year, period, earned DESC, member_id)",
    ),
    ("ix_tally_period_member", "CREATE INDEX ix_tally_period_member ON points_tally_period (member_id)"),
    ("ux_rule_versions", "CREATE UNIQUE INDEX ux_rule_versions ON point_rule_versions (rule_id, version)"),
    (
        "ix_activities_required_start",
        "CREATE INDEX ix_activities_required_start ON activities (starts_at) WHERE required",
    ),
]

BACKFILL_MONTHS = """
INSERT INTO points_tally_period (org_id, year, period, member_id, earned)
SELECT t.org_id, s.year, s.period, s.member_id, s.earned
FROM (
    SELECT l.member_id, l.year, CAST(SUBSTR(CAST(l.local_date AS TEXT), 6, 2) AS INTEGER) AS period,
           SUM(l.delta) AS earned
    FROM points_ledger l
    GROUP BY l.member_id, l.year, CAST(SUBSTR(CAST(l.local_date AS TEXT), 6, 2) AS INTEGER)
) s
JOIN points_tally t ON t.member_id = s.member_id AND t.year = s.year
"""
BACKFILL_QUARTERS = """
INSERT INTO points_tally_period (org_id, year, period, member_id, earned)
SELECT org_id, year, 20 + (period + 2) / 3, member_id, SUM(earned)
FROM points_tally_period WHERE period <= 12
GROUP BY org_id, year, 20 + (period + 2) / 3, member_id
"""
BACKFILL_VERSIONS = """
INSERT INTO point_rule_versions (rule_id, version, name, category, trigger, points, cap_day, cap_month, cap_year,
                                 needs_approval, valid_from, valid_to, status, changed_by, changed_at)
SELECT id, version, name, category, trigger, points, cap_day, cap_month, cap_year, needs_approval, valid_from,
       valid_to, status, NULL, updated_at
FROM point_rules
"""
# Expected members of closed required activities (active members of the organising org's subtree now),
# whether each attended (accepted, or pending when received before the close) and had approved leave.
ATTENDANCE_ROWS = """
SELECT a.starts_at, m.org_path,
       CASE WHEN EXISTS (SELECT 1 FROM checkins c WHERE c.member_id = m.id AND c.activity_id = a.id AND c.kind = 'in'
                         AND (c.status = 'accepted' OR (c.status = 'pending_review'
                              AND c.received_at <= COALESCE(a.closed_at, a.ends_at)))) THEN 1 ELSE 0 END,
       CASE WHEN EXISTS (SELECT 1 FROM leave_requests lr WHERE lr.member_id = m.id AND lr.activity_id = a.id
                         AND lr.status = 'approved') THEN 1 ELSE 0 END
FROM activities a
JOIN members m ON m.org_path LIKE a.org_path || '%' AND m.status IN ('normal', 'inflow')
WHERE a.required AND a.status = 'closed'
"""


def _start_ts(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="hongyi", description=DESCRIPTION)

    async def create():
        engine = engine_finder()
        pk = '"id" INTEGER PRIMARY KEY NOT NULL' if engine.engine_type == "sqlite" else '"id" BIGSERIAL PRIMARY KEY'
        for _, sql in TABLES:
            await engine.run_ddl(sql.format(pk=pk))
        await engine.run_ddl(
            "ALTER TABLE activities ADD COLUMN attendance_counted BOOLEAN NOT NULL DEFAULT FALSE"
        )
        for _, sql in INDEXES:
            await engine.run_ddl(sql)
        await engine.run_ddl(BACKFILL_MONTHS)
        await engine.run_ddl(BACKFILL_QUARTERS)
        await engine.run_ddl(BACKFILL_VERSIONS)
        tz = ZoneInfo(os.environ.get("HONGYI_TIMEZONE") or "Asia/Shanghai")
        counts: dict[tuple[int, int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
        for row in await engine.run_querystring(QueryString(ATTENDANCE_ROWS)):
            starts_at, org_path, attended, excused = row.values()
            local = _start_ts(starts_at).astimezone(tz)
            for org_id in (int(p) for p in org_path.strip("/").split("/") if p):
                c = counts[(org_id, local.year, local.month)]
                c[0] += 1
                c[1] += int(attended)
                c[2] += int(excused and not attended)
        for (org_id, year, month), (expected, attended, excused) in counts.items():
            await engine.run_ddl(  # integers only: inlined safely
                "INSERT INTO attendance_tally (org_id, year, month, expected, attended, excused)"
                f" VALUES ({org_id}, {year}, {month}, {expected}, {attended}, {excused})"
            )
        await engine.run_ddl(
            "UPDATE activities SET attendance_counted = TRUE, closed_at = COALESCE(closed_at, ends_at)"
            " WHERE required AND status = 'closed'"
        )
        if engine.engine_type == "postgres":
            await engine.run_ddl(
                "ALTER TABLE points_tally_period SET (autovacuum_vacuum_scale_factor = 0.01,"
                " autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0)"
            )

    async def drop():
        engine = engine_finder()
        await engine.run_ddl("DROP INDEX IF EXISTS ix_activities_required_start")
        await engine.run_ddl("ALTER TABLE activities DROP COLUMN attendance_counted")
        for name, _ in reversed(TABLES):
            await engine.run_ddl(f"DROP TABLE IF EXISTS {name}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
