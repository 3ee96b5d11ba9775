"""Runs Piccolo's migrations for the app against DATABASE_URL (both engines, same files)."""

from __future__ import annotations

import os

from server.settings import Settings


def _configure(settings: Settings) -> None:
    os.environ["PICCOLO_CONF"] = "piccolo_conf"
    os.environ["DATABASE_URL"] = settings.database_url
    import piccolo_conf

    from server.core.engines import engine_for

    piccolo_conf.DB = engine_for(settings.database_url)
    if settings.dialect == "sqlite":
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    from server.piccolo_app import APP_CONFIG

    for table in APP_CONFIG.table_classes:
        table._meta.db = piccolo_conf.DB


async def migrate_up(settings: Settings) -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    _configure(settings)
    result = await run_forwards(app_name="hongyi", migration_id="all", fake=False)
    if not result.success:
        raise SystemExit(f"migration failed: {result.message}")
    if settings.dialect == "sqlite":
        import sqlite3

        conn = sqlite3.connect(settings.sqlite_path)
        conn.execute("PRAGMA journal_mode = WAL")  # persistent; set once here
        conn.close()


async def migrate_down(settings: Settings) -> None:
    from piccolo.apps.migrations.commands.backwards import run_backwards

    _configure(settings)
    result = await run_backwards(app_name="hongyi", migration_id="all", auto_agree=True)
    if not result.success:
        raise SystemExit(f"migration rollback failed: {result.message}")
