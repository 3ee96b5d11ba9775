"""一帮一 visit record in full (DESIGN §2): besides what was done (``content``) and the help given
(``help_given``, the actions taken), a visit keeps the problems found and the outcome.

Two TEXT columns with an empty default, the same on both engines; old visits read as "not recorded".
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "pairing visits: problems found and outcome"

COLUMNS = ("problems", "outcome")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="hongyi", description=DESCRIPTION)

    async def add():
        engine = engine_finder()
        for column in COLUMNS:
            await engine.run_ddl(f"ALTER TABLE pairing_visits ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")

    async def drop():
        engine = engine_finder()
        for column in reversed(COLUMNS):
            await engine.run_ddl(f"ALTER TABLE pairing_visits DROP COLUMN {column}")

    manager.add_raw(add)
    manager.add_raw_backwards(drop)
    return manager
