"""请假: leave requests for required activities (one per member and activity).

Raw SQL so both engines get the same shape: SQLite declares TIMESTAMPTZ (our converters key on the
declared type), PostgreSQL uses BIGSERIAL/TIMESTAMPTZ.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T18:35:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "leave requests"

COLUMNS = (
    '"activity_id" {fk} REFERENCES "activities" ("id") ON DELETE RESTRICT, '
    '"member_id" {fk} REFERENCES "members" ("id") ON DELETE RESTRICT, '
    '"reason" VARCHAR(200) NOT NULL, "status" VARCHAR(16) NOT NULL, "created_by" INTEGER NOT NULL, '
    '"created_at" TIMESTAMPTZ NOT NULL, "decided_by" INTEGER, "decided_at" TIMESTAMPTZ, "note" VARCHAR(200)'
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="hongyi", description=DESCRIPTION)

    async def create():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            pk, fk = '"id" INTEGER PRIMARY KEY NOT NULL', "INTEGER NOT NULL"
        else:
            pk, fk = '"id" BIGSERIAL PRIMARY KEY', "INTEGER NOT NULL"
        await engine.run_ddl(f'CREATE TABLE "leave_requests" ({pk}, {COLUMNS.format(fk=fk)})')
        await engine.run_ddl('CREATE UNIQUE INDEX ux_leave_member_activity ON leave_requests (activity_id, member_id)')
        await engine.run_ddl("CREATE INDEX ix_leave_status ON leave_requests (status, activity_id)")

    async def drop():
        engine = engine_finder()
        await engine.run_ddl("DROP TABLE IF EXISTS leave_requests")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
