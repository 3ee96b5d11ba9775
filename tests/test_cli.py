"""The command line: migrations up and down on both engines, settings errors, keys, admin, demo seed."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest

from server.keys.keyring import KeyRing
from server.keys.tokens import TokenService
from tests.conftest import APP_TABLES, Backend, _pg_admin, _pg_url, run_cli


async def _pg_tables(url: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        indexes = await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        return {r[0] for r in rows} | {r[0] for r in indexes}
    finally:
        await conn.close()


async def _pg_value(url: str, sql: str):
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _sqlite_tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    finally:
        conn.close()


def test_migrations_up_down_up(backend: Backend, tmp_path: Path) -> None:
    keys = {"HONGYI_KEY_FILE": str(tmp_path / "keys.json")}
    if backend.name == "sqlite":
        path = tmp_path / "m.db"
        url = f"sqlite:///{path}"

        def tables() -> set[str]:
            return _sqlite_tables(path)
    else:
        dbname = f"hongyi_m_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{dbname}"'))
        url = _pg_url(dbname)

        def tables() -> set[str]:
            return asyncio.run(_pg_tables(url))
    try:
        env = {"DATABASE_URL": url, **keys}
        up = run_cli("migrate", env=env)
        assert up.returncode == 0, up.stderr
        assert set(APP_TABLES) <= tables() and "ux_checkins_live_activity" in tables()
        assert {"ix_checkins_station_scanned", "ux_grants_scope"} <= tables()
        if backend.name == "postgres":
            options = asyncio.run(_pg_value(url, "SELECT reloptions FROM pg_class WHERE relname = 'points_tally'"))
            assert "autovacuum_vacuum_scale_factor=0.01" in options
        assert run_cli("migrate", env=env).returncode == 0  # idempotent
        down = run_cli("migrate", "--down", env=env)
        assert down.returncode == 0, down.stderr
        assert not (set(APP_TABLES) & tables()) and "ux_checkins_live_activity" not in tables()
        assert "ux_grants_scope" not in tables()
        again = run_cli("migrate", env=env)
        assert again.returncode == 0, again.stderr
        assert set(APP_TABLES) <= tables()
        seeded = run_cli("seed-demo", env=env)
        assert seeded.returncode == 0 and "13800000000" in seeded.stdout, seeded.stderr
        second = run_cli("seed-demo", env=env)
        assert second.returncode == 0 and "already present" in second.stdout
        admin = run_cli("create-admin", "--phone", "13811112222", "--password", "admin-pass-1", env=env)
        assert admin.returncode == 0, admin.stderr
    finally:
        if backend.name == "postgres":
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL"),
        ({"OFFLINE_SOFT_HOURS": "many"}, "OFFLINE_SOFT_HOURS"),
        ({"HONGYI_TIMEZONE": "Mars/Olympus"}, "HONGYI_TIMEZONE"),
        ({"PUBLIC_BASE_URL": "ftp://x"}, "PUBLIC_BASE_URL"),
        ({"SQLITE_CHECKIN_WRITER": "maybe"}, "SQLITE_CHECKIN_WRITER"),
        ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, "database unavailable"),
    ],
)
def test_wrong_settings_stop_start_up_with_one_line(env: dict[str, str], needle: str, tmp_path: Path) -> None:
    done = run_cli("serve", "--port", "0", env={"HONGYI_KEY_FILE": str(tmp_path / "k.json"), **env})
    assert done.returncode == 2
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_key_rotation_keeps_old_codes_valid(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    env = {"HONGYI_KEY_FILE": str(path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert run_cli("keys", "generate", env=env).returncode == 0
    old_ring = KeyRing.load_or_create(path)
    old_token = TokenService(old_ring, "http://x").station_token(1, 1)
    assert oct(path.stat().st_mode)[-3:] == "600"
    rotated = run_cli("keys", "rotate", env=env)
    assert rotated.returncode == 0
    new_ring = KeyRing.load_or_create(path)
    assert new_ring.signing.kid != old_ring.signing.kid
    service = TokenService(new_ring, "http://x")
    assert service.verify_server(old_token)["sid"] == 1  # printed posters survive a rotation
    listed = run_cli("keys", "list", env=env).stdout
    assert old_ring.signing.kid in listed and f"{new_ring.signing.kid}\tactive (signing)" in listed
    assert run_cli("keys", "retire", old_ring.signing.kid, env=env).returncode == 0
    retired = TokenService(KeyRing.load_or_create(path), "http://x")
    from server.keys.tokens import TokenError

    with pytest.raises(TokenError) as caught:
        retired.verify_server(old_token)
    assert caught.value.reason == "unknown_key"
    assert len(retired.keyring.jwks()) == 1
