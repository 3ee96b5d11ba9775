"""Piccolo configuration: the engine follows DATABASE_URL (SQLite file by default)."""

from piccolo.conf.apps import AppRegistry

from server.core.engines import engine_for
from server.settings import Settings

DB = engine_for(Settings.from_env().database_url)

APP_REGISTRY = AppRegistry(apps=["server.piccolo_app"])
