"""一帮一 pairings and their visits.

Raw SQL so both engines get the same shape: SQLite declares TIMESTAMPTZ/DATE/BOOLEAN (our converters
key on the declared type), PostgreSQL uses BIGSERIAL. ``ux_pairing_visits_member_uuid`` makes a
replayed visit (same helper, same ``client_uuid``) a property of the database: a second row cannot be
written even by two identical submissions at once.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T18:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "pairings (一帮一) and pairing visits"

PAIRINGS = (
    '"member_id" INTEGER NOT NULL REFERENCES "members" ("id") ON DELETE RESTRICT, '
    '"kind" VARCHAR(16) NOT NULL, "name" VARCHAR(50) NOT NULL, "category" VARCHAR(50) NOT NULL DEFAULT \'\', '
    '"contact" VARCHAR(100), "goals" TEXT NOT NULL DEFAULT \'\', "start_date" DATE NOT NULL, "end_date" DATE, '
    '"interval_days" INTEGER NOT NULL DEFAULT 30, "status" VARCHAR(16) NOT NULL DEFAULT \'active\', '
    '"created_by" INTEGER, "created_at" TIMESTAMPTZ NOT NULL, "updated_at" TIMESTAMPTZ NOT NULL'
)
VISITS = (
    '"pairing_id" {fk} NOT NULL REFERENCES "pairings" ("id") ON DELETE RESTRICT, '
    '"member_id" INTEGER NOT NULL REFERENCES "members" ("id") ON DELETE RESTRICT, '
    '"client_uuid" VARCHAR(64) NOT NULL, "visited_at" TIMESTAMPTZ NOT NULL, "mode" VARCHAR(16) NOT NULL, '
    '"content" TEXT NOT NULL, "help_given" TEXT NOT NULL DEFAULT \'\', '
    '"status" VARCHAR(16) NOT NULL DEFAULT \'pending\', "method" VARCHAR(8) NOT NULL DEFAULT \'self\', '
    '"recorded_by" INTEGER NOT NULL, "created_at" TIMESTAMPTZ NOT NULL, '
    '"verified_by" INTEGER, "verified_at" TIMESTAMPTZ, "verify_note" VARCHAR(200)'
)
INDEXES = [
    ("ix_pairings_member", "CREATE INDEX ix_pairings_member ON pairings (member_id, status)"),
    # One visit per (member, client_uuid), led by client_uuid so that "is this uuid someone else's?" is an
    # index lookup as well (the same pair as ux_attempts_uuid_member of check-ins).
    (
        "ux_pairing_visits_member_uuid",
        "CREATE UNIQUE INDEX ux_pairing_visits_member_uuid ON pairing_visits (client_uuid, member_id)",
    ),
    ("ix_pairing_visits_pairing", "CREATE INDEX ix_pairing_visits_pairing ON pairing_visits (pairing_id, visited_at)"),
    (
        "ix_pairing_visits_pending",
        "CREATE INDEX ix_pairing_visits_pending ON pairing_visits (visited_at) WHERE status = 'pending'",
    ),
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="hongyi", description=DESCRIPTION)

    async def create():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            pk, fk = '"id" INTEGER PRIMARY KEY NOT NULL', "INTEGER"
        else:
            pk, fk = '"id" BIGSERIAL PRIMARY KEY', "BIGINT"
        await engine.run_ddl(f'CREATE TABLE "pairings" ({pk}, {PAIRINGS})')
        await engine.run_ddl(f'CREATE TABLE "pairing_visits" ({pk}, {VISITS.format(fk=fk)})')
        for _, sql in INDEXES:
            await engine.run_ddl(sql)

    async def drop():
        engine = engine_finder()
        await engine.run_ddl("DROP TABLE IF EXISTS pairing_visits")
        await engine.run_ddl("DROP TABLE IF EXISTS pairings")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
