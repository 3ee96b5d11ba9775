"""Uniqueness and hot-path indexes that Piccolo's column options cannot express.

Partial unique indexes make "no double check-in" a property of the database, not only of the
code: they hold under concurrent PostgreSQL writers too. Same SQL on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T15:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique and hot-path indexes"

INDEXES = [
    ("ux_attempts_uuid_member", "CREATE UNIQUE INDEX ux_attempts_uuid_member ON checkin_attempts (client_uuid, member_id)"),
    (
        "ux_checkins_live_activity",
        "CREATE UNIQUE INDEX ux_checkins_live_activity ON checkins (member_id, activity_id, kind) "
        "WHERE activity_id IS NOT NULL AND status IN ('accepted', 'pending_review')",
    ),
    (
        "ux_checkins_live_visit",
        "CREATE UNIQUE INDEX ux_checkins_live_visit ON checkins (member_id, station_id, local_date) "
        "WHERE activity_id IS NULL AND kind = 'in' AND status IN ('accepted', 'pending_review')",
    ),
    ("ix_checkins_activity_status", "CREATE INDEX ix_checkins_activity_status ON checkins (activity_id, status, kind)"),
    # Only the review queue needs this; partial, so the common accepted insert does not maintain it.
    (
        "ix_checkins_pending_station",
        "CREATE INDEX ix_checkins_pending_station ON checkins (station_id) WHERE status = 'pending_review'",
    ),
    ("ix_checkins_member_scanned", "CREATE INDEX ix_checkins_member_scanned ON checkins (member_id, scanned_at)"),
    ("ix_ledger_member_rule_time", "CREATE INDEX ix_ledger_member_rule_time ON points_ledger (member_id, rule_id, occurred_at)"),
    ("ix_ledger_source", "CREATE INDEX ix_ledger_source ON points_ledger (source_type, source_id)"),
    ("ux_tally_org_year_member", "CREATE UNIQUE INDEX ux_tally_org_year_member ON points_tally (org_id, year, member_id)"),
    ("ix_tally_rank", "CREATE INDEX ix_tally_rank ON points_tally (org_id, year, earned DESC, member_id)"),
    ("ix_activities_station_window", "CREATE INDEX ix_activities_station_window ON activities (station_id, checkin_opens_at, checkin_closes_at)"),
    ("ux_hours_checkin_in", "CREATE UNIQUE INDEX ux_hours_checkin_in ON volunteer_hours (checkin_in_id)"),
    ("ix_grants_org", "CREATE INDEX ix_grants_org ON role_grants (org_id)"),
    ("ix_grants_station", "CREATE INDEX ix_grants_station ON role_grants (station_id)"),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="hongyi", description=DESCRIPTION)

    async def create():
        engine = engine_finder()
        for _, sql in INDEXES:
            await engine.run_ddl(sql)

    async def drop():
        engine = engine_finder()
        for name, _ in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
