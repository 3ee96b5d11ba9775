"""Every test runs on SQLite and on PostgreSQL (``backend`` is parametrised at session scope).

SQLite: the schema is migrated once (through the real ``python -m server migrate``) into a
template file that each test copies. PostgreSQL: one database per session, migrated the same way,
emptied between tests. With CI=true a missing PostgreSQL is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("HONGYI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
APP_TABLES = [
    "pairing_visits", "pairings", "leave_requests", "points_tally_period", "attendance_tally", "point_rule_versions",
    "volunteer_hours_corrections", "volunteer_hours", "points_tally", "points_ledger", "point_rules", "checkins", "checkin_attempts", "activities",
    "invite_codes", "refresh_tokens", "role_grants", "users", "kiosks", "stations", "members", "orgs",
]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120,
    )


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


@dataclass
class Backend:
    name: str
    settings: Settings
    template: Path | None = None  # SQLite template file


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hongyi")


@pytest.fixture(scope="session")
def key_file(session_dir: Path) -> Path:
    return session_dir / "keys.json"


def _settings(database_url: str, key_file: Path) -> Settings:
    env = {
        "DATABASE_URL": database_url,
        "HONGYI_KEY_FILE": str(key_file),
        "PUBLIC_BASE_URL": "http://testserver",
        "HONGYI_PWA_DIST": str(ROOT / "pwa" / "dist-missing-in-tests"),
    }
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def sqlite_template(session_dir: Path, key_file: Path) -> Path:
    """A migrated SQLite file; tests copy it."""
    template = session_dir / "template.db"
    if not template.exists():
        done = run_cli("migrate", env={"DATABASE_URL": f"sqlite:///{template}", "HONGYI_KEY_FILE": str(key_file)})
        assert done.returncode == 0, done.stderr + done.stdout
    return template


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, session_dir: Path, key_file: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        yield Backend("sqlite", _settings(f"sqlite:///{session_dir / 'unused.db'}", key_file), template)
        return
    dbname = f"hongyi_t_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{dbname}"'))
    except Exception as exc:  # noqa: BLE001 — any connection problem means "no PostgreSQL here"
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    url = _pg_url(dbname)
    done = run_cli("migrate", env={"DATABASE_URL": url, "HONGYI_KEY_FILE": str(key_file)})
    assert done.returncode == 0, done.stderr + done.stdout
    try:
        yield Backend("postgres", _settings(url, key_file))
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


@pytest.fixture
async def settings(backend: Backend, tmp_path: Path) -> Settings:
    if backend.name == "sqlite":
        assert backend.template is not None
        path = tmp_path / "hongyi.db"
        shutil.copy(backend.template, path)
        return replace(backend.settings, database_url=f"sqlite:///{path}")
    import asyncpg

    conn = await asyncpg.connect(backend.settings.database_url)
    try:
        await conn.execute(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return backend.settings


class Api:
    """An HTTP client for one user of the app (or anonymous)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None = None, login: dict[str, Any] | None = None):
        self.client = client
        self.token = token
        self.login_data = login or {}

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.get(url, headers=self._headers(kw.pop("headers", None)), **kw)

    async def post(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    async def patch(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.patch(url, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)

    @property
    def user(self) -> dict[str, Any]:
        return self.login_data["user"]


@dataclass
class World:
    """The demo street, plus ways to log in as each of its people."""

    app: Any
    client: httpx.AsyncClient
    ids: dict[str, int]
    backend: str

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    @property
    def anon(self) -> Api:
        return Api(self.client)

    async def login(self, phone: str, password: str) -> Api:
        response = await self.client.post("/api/v1/auth/login", json={"phone": phone, "password": password})
        assert response.status_code == 200, response.text
        data = response.json()
        return Api(self.client, data["access_token"], data)

    async def as_phone(self, phone: str) -> Api:
        """A signed-in client without the (deliberately slow) password check; test_auth covers login."""
        user_id = await self.ctx.db.fetchval("SELECT id FROM users WHERE phone = $1", phone)
        assert user_id is not None, phone
        token, _ = self.ctx.tokens.access_token(int(user_id), 15)
        return Api(self.client, token)

    async def admin(self) -> Api:
        return await self.as_phone("13800000000")

    async def staff_a(self) -> Api:
        return await self.as_phone("13800000001")

    async def staff_b(self) -> Api:
        return await self.as_phone("13800000002")

    async def secretary(self) -> Api:
        return await self.as_phone("13800000003")

    async def member(self, index: int = 1) -> Api:
        """Member ``index`` (1-based, phone 139000000NN)."""
        return await self.as_phone(f"139{index:08d}")

    async def member_id(self, index: int) -> int:
        return int(await self.ctx.db.fetchval("SELECT member_id FROM users WHERE phone = $1", f"139{index:08d}"))

    async def count(self, sql: str, *args: Any) -> int:
        return int(await self.ctx.db.fetchval(sql, *args))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def one_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter counts per minute: freeze its clock so a test's tries never straddle two windows."""
    import time
    from types import SimpleNamespace

    from server.core import ratelimit

    frozen = time.time()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: frozen))


@pytest.fixture
async def world(app: Any, client: httpx.AsyncClient, backend: Backend) -> World:
    from server.seed import _seed

    ids = await _seed(app.state.ctx)
    return World(app=app, client=client, ids=ids, backend=backend.name)


def now_iso(delta_seconds: float = 0) -> str:
    from datetime import timedelta

    return (datetime.now(UTC) + timedelta(seconds=delta_seconds)).isoformat()


def new_uuid() -> str:
    return str(uuid.uuid4())


def has_chinese(text: object) -> bool:
    """Error details are for people: Chinese, never a raw framework message."""
    return isinstance(text, str) and any("\u4e00" <= ch <= "\u9fff" for ch in text)
