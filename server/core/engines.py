"""Piccolo engines that run their queries through our ``Database``.

Piccolo defines the schema, runs migrations and builds the non-hot queries; once the app has
started, ``attach`` routes every Piccolo query through the app's connection manager, so a Piccolo
query inside ``db.transaction()`` joins that unit and no engine opens a connection of its own.
Before ``attach`` (the ``migrate`` command), the engines behave as stock Piccolo.
"""

from __future__ import annotations

from typing import Any

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.querystring import QueryString

from server.core.db import Database


class _Routed:
    database: Database | None = None

    async def run_querystring(self, querystring: QueryString, in_pool: bool = True) -> Any:
        if self.database is None:
            return await super().run_querystring(querystring, in_pool=in_pool)  # type: ignore[misc]
        sql, args = querystring.compile_string(engine_type=self.engine_type)  # type: ignore[attr-defined]
        return await self.database.run_piccolo(sql, list(args), querystring.query_type)

    async def run_ddl(self, ddl: str, in_pool: bool = True) -> Any:
        if self.database is None:
            return await super().run_ddl(ddl, in_pool=in_pool)  # type: ignore[misc]
        return await self.database.run_piccolo(ddl, [], "ddl")


class RoutedSQLiteEngine(_Routed, SQLiteEngine):
    pass


class RoutedPostgresEngine(_Routed, PostgresEngine):
    pass


def engine_for(database_url: str) -> SQLiteEngine | PostgresEngine:
    if database_url.startswith(("postgres://", "postgresql://")):
        return RoutedPostgresEngine(config={"dsn": database_url})
    path = database_url.removeprefix("sqlite:///")
    return RoutedSQLiteEngine(path=path, timeout=30)


def attach(database: Database | None) -> None:
    """Point every table of the app at an engine that runs through ``database``."""
    from server.piccolo_app import APP_CONFIG

    engine = RoutedPostgresEngine(config={}) if database and database.dialect == "postgres" else RoutedSQLiteEngine()
    engine.database = database
    for table in APP_CONFIG.table_classes:
        table._meta.db = engine
