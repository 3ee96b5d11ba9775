"""Indexes for the staff panel.

- ``ix_checkins_station_scanned``: a station's latest check-ins (the live feed of the dashboard and the
  kiosk screen) read as an index range, newest first, instead of scanning the station's history.
- ``ux_grants_scope``: one grant per (user, role, org, station) — two admins granting the same role at
  once cannot leave a duplicate. NULL scopes are folded to 0 so the rule holds for them too.
Same SQL on SQLite and PostgreSQL.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T18:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "staff panel: station check-in feed index, unique role grants"

INDEXES = [
    ("ix_checkins_station_scanned", "CREATE INDEX ix_checkins_station_scanned ON checkins (station_id, scanned_at)"),
    (
        "ux_grants_scope",
        "CREATE UNIQUE INDEX ux_grants_scope ON role_grants (user_id, role, COALESCE(org_id, 0), COALESCE(station_id, 0))",
    ),
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
