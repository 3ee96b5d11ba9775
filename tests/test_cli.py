"""The command line: migrations up and down on both engines, settings errors, keys, admin, demo seed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

import pytest

from server.keys.keyring import KeyRing
from server.keys.tokens import TokenService
from tests.conftest import APP_TABLES, ROOT, Backend, _pg_admin, _pg_url, run_cli


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


def _listening_sockets(port: int) -> int:
    """Listening TCP sockets on ``port`` (state 0A in /proc/net/tcp), whoever holds them."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")


def test_two_workers_listen_on_sockets_of_their_own(tmp_path: Path) -> None:
    """``serve --workers 2``: each worker accepts on a socket of its own (the kernel spreads the
    connections; one shared socket let one worker take most of them), a check-in works through
    them, and a second server cannot join the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hongyi.db'}", "HONGYI_KEY_FILE": str(tmp_path / "keys.json"),
        "HONGYI_DATA_DIR": str(tmp_path), "PUBLIC_BASE_URL": base, "HONGYI_PWA_DIST": str(tmp_path / "no-dist"),
    }
    for step in (("migrate",), ("seed-demo",)):
        done = run_cli(*step, env=env)
        assert done.returncode == 0, done.stderr + done.stdout
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while _listening_sockets(port) < 2 or httpx.get(f"{base}/api/v1/health", timeout=2).status_code != 200:
            assert server.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "two workers not listening in 60 s: " + log.read_text()[-2000:]
            time.sleep(0.2)
        assert _listening_sockets(port) == 2

        with httpx.Client(base_url=base, timeout=10) as http:
            login = {"phone": "13800000000", "password": "hongyi-admin"}
            admin = {"Authorization": f"Bearer {http.post('/api/v1/auth/login', json=login).json()['access_token']}"}
            login = {"phone": "13900000001", "password": "hongyi-member"}
            member = {"Authorization": f"Bearer {http.post('/api/v1/auth/login', json=login).json()['access_token']}"}
            station = http.get("/api/v1/stations", headers=admin).json()[0]
            now = time.time()
            activity = http.post("/api/v1/activities", headers=admin, json={
                "type": "branch_meeting", "title": "两个进程", "station_id": station["id"],
                "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600)),
                "ends_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
            }).json()
            qr = http.get(f"/api/v1/activities/{activity['id']}/qr", headers=admin | {"accept": "application/json"}).json()
            body = {"client_uuid": str(uuid.uuid4()), "token": qr["url"], "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            answers = [http.post("/api/v1/checkins", json=body, headers=member) for _ in range(4)]
        assert {a.status_code for a in answers} == {200}
        assert {(a.json()["status"], a.json()["checkin_id"]) for a in answers} == {("accepted", answers[0].json()["checkin_id"])}

        second = subprocess.run(
            [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr and "Traceback" not in second.stderr
        assert _listening_sockets(port) == 2
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    deadline = time.monotonic() + 10
    while _listening_sockets(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _listening_sockets(port) == 0
