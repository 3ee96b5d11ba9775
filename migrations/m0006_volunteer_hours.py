"""Volunteer hours (DESIGN §5): approved part, review, and correction requests after the lock.

- ``volunteer_hours.approved_hours``: the hours the record counts now (``hours`` stays what the
  check-in/check-out times give). ``auto_hours``: the part approved automatically at check-out
  (up to 8 h a member a local day); the rest waits for staff review. Existing approved rows are
  backfilled with their computed hours.
- ``volunteer_hours_corrections``: a change to a locked record (10 working days after the activity
  ends) is a request approved or rejected by an admin/secretary; the row keeps old and new values,
  who asked, who decided and when. At most one open request per record (partial unique index).
- Indexes for a member's day total and the review queue.

Raw SQL, the same on both engines except the identity column (SQLite ``INTEGER PRIMARY KEY``,
PostgreSQL ``BIGSERIAL``); SQLite declares TIMESTAMPTZ, which our converters key on.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T18:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "volunteer hours: approved/auto hours, correction requests"

CORRECTION_COLUMNS = (
    '"hours_id" {fk} REFERENCES "volunteer_hours" ("id") ON DELETE RESTRICT, '
    '"old_hours" DOUBLE PRECISION NOT NULL, "new_hours" DOUBLE PRECISION NOT NULL, '
    '"reason" VARCHAR(200) NOT NULL, "status" VARCHAR(16) NOT NULL, '
    '"requested_by" INTEGER NOT NULL, "requested_at" TIMESTAMPTZ NOT NULL, '
    '"decided_by" INTEGER, "decided_at" TIMESTAMPTZ, "note" VARCHAR(200)'
)

INDEXES = [
    ("ix_hours_member_date", "CREATE INDEX ix_hours_member_date ON volunteer_hours (member_id, local_date)"),
    ("ix_hours_status_date", "CREATE INDEX ix_hours_status_date ON volunteer_hours (status, local_date)"),
    ("ix_hours_corrections_hours", "CREATE INDEX ix_hours_corrections_hours ON volunteer_hours_corrections (hours_id)"),
    (
        "ux_hours_corrections_open",
        "CREATE UNIQUE INDEX ux_hours_corrections_open ON volunteer_hours_corrections (hours_id) WHERE status = 'pending'",
    ),
    ("ix_hours_corrections_status", "CREATE INDEX ix_hours_corrections_status ON volunteer_hours_corrections (status)"),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="hongyi", description=DESCRIPTION)

    async def create():
        engine = engine_finder()
        await engine.run_ddl("ALTER TABLE volunteer_hours ADD COLUMN approved_hours DOUBLE PRECISION NOT NULL DEFAULT 0")
        await engine.run_ddl("ALTER TABLE volunteer_hours ADD COLUMN auto_hours DOUBLE PRECISION NOT NULL DEFAULT 0")
        await engine.run_ddl(
            "UPDATE volunteer_hours SET approved_hours = hours, auto_hours = hours WHERE status = 'approved'"
        )
        if engine.engine_type == "sqlite":
            pk, fk = '"id" INTEGER PRIMARY KEY NOT NULL', "INTEGER NOT NULL"
        else:
            pk, fk = '"id" BIGSERIAL PRIMARY KEY', "BIGINT NOT NULL"
        await engine.run_ddl(
            f'CREATE TABLE "volunteer_hours_corrections" ({pk}, {CORRECTION_COLUMNS.format(fk=fk)})'
        )
        for _, sql in INDEXES:
            await engine.run_ddl(sql)

    async def drop():
        engine = engine_finder()
        for name, _ in reversed(INDEXES):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")
        await engine.run_ddl("DROP TABLE IF EXISTS volunteer_hours_corrections")
        await engine.run_ddl("ALTER TABLE volunteer_hours DROP COLUMN auto_hours")
        await engine.run_ddl("ALTER TABLE volunteer_hours DROP COLUMN approved_hours")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
