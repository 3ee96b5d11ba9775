"""Browser tests: the built PWA, served by the real server (one process per database engine), driven
in Debian's Chromium through Playwright with a fake camera.

Each engine gets its own server on a free 127.0.0.1 port, migrated and seeded with the demo through
the CLI, and stopped by its PID. Tests create their own stations, activities and members through the
API, so they do not depend on each other. With CI=true a missing Chromium or PWA build fails.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI, PG_ADMIN_URL, ROOT, _pg_admin, _pg_url, run_cli

CHROMIUM = os.environ.get("HONGYI_CHROMIUM", "/usr/bin/chromium")
DIST = ROOT / "pwa" / "dist"
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 360, "height": 740}
MEMBER_PASSWORD = "member-pass-2026"


def _need(condition: bool, message: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


@dataclass
class Live:
    """A running server and an admin API client for setting up test data."""

    engine: str
    base_url: str
    database_url: str
    dist: Path
    admin: httpx.Client
    ids: dict[str, int] = field(default_factory=dict)

    # -- test data --------------------------------------------------------------------------------
    def org_id(self, name: str) -> int:
        orgs = self.admin.get("/api/v1/orgs").raise_for_status().json()
        return next(o["id"] for o in orgs if o["name"] == name)

    def new_station(self) -> dict[str, Any]:
        body = {"name": f"测试服务站-{uuid.uuid4().hex[:6]}", "org_id": self.org_id("幸福里社区党委"), "address": "测试路 1 号"}
        return self.admin.post("/api/v1/stations", json=body).raise_for_status().json()

    def new_activity(self, station_id: int, *, start: timedelta = timedelta(minutes=-30), hours: float = 2,
                     title: str | None = None, activity_type: str = "theme_day") -> dict[str, Any]:
        starts = datetime.now(UTC) + start
        body = {
            "type": activity_type, "title": title or f"主题党日-{uuid.uuid4().hex[:4]}", "station_id": station_id,
            "starts_at": iso(starts), "ends_at": iso(starts + timedelta(hours=hours)),
            "checkin_opens_at": iso(starts - timedelta(minutes=30)), "checkin_closes_at": iso(starts + timedelta(hours=hours)),
        }
        response = self.admin.post("/api/v1/activities", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def new_member(self, name: str = "测试党员") -> dict[str, Any]:
        """A member with an invite code (not yet activated)."""
        phone = f"137{uuid.uuid4().int % 10**8:08d}"
        member = self.admin.post(
            "/api/v1/members", json={"name": name, "phone": phone, "org_id": self.org_id("幸福里第一党支部")}
        ).raise_for_status().json()
        invite = self.admin.post(f"/api/v1/members/{member['id']}/invite").raise_for_status().json()
        return {"id": member["id"], "phone": phone, "name": name, "invite_code": invite["code"], "invite_url": invite["url"]}

    def station_id(self, name: str) -> int:
        return next(s["id"] for s in self.admin.get("/api/v1/stations").raise_for_status().json() if s["name"].startswith(name))

    def card_png(self, member_id: int) -> bytes:
        return self.admin.get(f"/api/v1/members/{member_id}/card", params={"format": "png"}).raise_for_status().content

    def activated_member(self, name: str = "测试党员") -> dict[str, Any]:
        member = self.new_member(name)
        response = httpx.post(f"{self.base_url}/api/v1/auth/activate",
                              json={"code": member["invite_code"], "password": MEMBER_PASSWORD})
        assert response.status_code == 200, response.text
        member["access_token"] = response.json()["access_token"]
        return member

    def activity_qr_png(self, activity_id: int) -> bytes:
        return self.admin.get(f"/api/v1/activities/{activity_id}/qr", params={"format": "png"}).raise_for_status().content

    def activity_token(self, activity_id: int) -> str:
        return self.admin.get(f"/api/v1/activities/{activity_id}/qr").raise_for_status().json()["token"]

    def poster_png(self, station_id: int) -> bytes:
        return self.admin.get(f"/api/v1/stations/{station_id}/poster", params={"format": "png"}).raise_for_status().content

    def as_member(self, member: dict[str, Any]) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {member['access_token']}"})

    # -- direct reads of what the server stored ---------------------------------------------------
    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.engine == "sqlite":
            import sqlite3

            path = self.database_url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as conn:
                return conn.execute(query.replace("$", "?"), args).fetchall()

        async def fetch() -> list[tuple[Any, ...]]:
            import asyncpg

            conn = await asyncpg.connect(self.database_url)
            try:
                return [tuple(r) for r in await conn.fetch(query, *args)]
            finally:
                await conn.close()

        # Playwright's sync API keeps an event loop running in this thread: use another one.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, fetch()).result()


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy in 30 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    _need(Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)")
    _need((DIST / "index.html").exists() and (DIST / "sw.js").exists(), "the PWA is not built (cd pwa && npm run build)")
    work = tmp_path_factory.mktemp(f"live-{request.param}")
    dist = work / "dist"  # a copy: the update test changes sw.js
    shutil.copytree(DIST, dist)
    dbname = None
    if request.param == "sqlite":
        database_url = f"sqlite:///{work / 'hongyi.db'}"
    else:
        dbname = f"hongyi_b_{uuid.uuid4().hex[:10]}"
        try:
            asyncio.run(_pg_admin(f'CREATE DATABASE "{dbname}"'))
        except Exception as exc:  # noqa: BLE001
            _need(False, f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
        database_url = _pg_url(dbname)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": database_url, "HONGYI_KEY_FILE": str(work / "keys.json"), "HONGYI_DATA_DIR": str(work),
        "PUBLIC_BASE_URL": base_url, "HONGYI_PWA_DIST": str(dist), "LOGIN_ATTEMPTS_PER_MINUTE": "200",
    }
    for step in (("migrate",), ("seed-demo",)):
        done = run_cli(*step, env=env)
        assert done.returncode == 0, done.stderr + done.stdout
    log = work / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )
    admin = None
    try:
        _wait_healthy(base_url, process, log)
        login = httpx.post(f"{base_url}/api/v1/auth/login", json={"phone": "13800000000", "password": "hongyi-admin"})
        assert login.status_code == 200, login.text
        admin = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        yield Live(request.param, base_url, database_url, dist, admin)
    finally:
        if admin is not None:
            admin.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if dbname:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


# -- fake camera ----------------------------------------------------------------------------------
def y4m_from_png(png: bytes, path: Path) -> Path:
    """A one-frame 640×480 Y4M (Chromium loops it) showing the QR image on white."""
    from PIL import Image

    qr = Image.open(io.BytesIO(png)).convert("L")
    side = 440
    qr = qr.resize((side, side), Image.Resampling.NEAREST)
    frame = Image.new("L", (640, 480), 255)
    frame.paste(qr, ((640 - side) // 2, (480 - side) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        out.write(b"FRAME\n")
        out.write(y.tobytes())
        out.write(cb.resize((320, 240)).tobytes())
        out.write(cr.resize((320, 240)).tobytes())
    return path


def qr_png(text: str) -> bytes:
    from server.core.qr import qr_png as render

    return render(text)


def forged_token(real_token: str, claims: dict[str, Any] | None = None) -> str:
    """Same header (kid) as a real code, altered claims, signed by a key the server never had."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    header_b64, payload_b64, _ = real_token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    payload = claims or json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    return jwt.encode(payload, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"], "typ": None})


# -- browser --------------------------------------------------------------------------------------
class Browser:
    """Launches Debian Chromium (persistent profile, so the service worker and IndexedDB survive a
    relaunch) with a chosen fake-camera file."""

    def __init__(self, playwright: Any, profile: Path, live: Live) -> None:
        self.playwright = playwright
        self.profile = profile
        self.live = live
        self.context: Any = None

    def launch(self, camera: Path | None = None, offline: bool = False, viewport: dict[str, int] | None = None) -> Any:
        self.close()
        args = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--lang=zh-CN"]
        if camera is not None:
            args.append(f"--use-file-for-fake-video-capture={camera}")
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=CHROMIUM, headless=True, args=args, viewport=viewport or VIEWPORT,
            device_scale_factor=1 if viewport else 2, is_mobile=viewport is None, has_touch=viewport is None,
            locale="zh-CN", timezone_id="Asia/Shanghai",
            permissions=["camera"], base_url=self.live.base_url,
            bypass_csp=True,  # Playwright evaluates strings; the app itself runs under the real CSP elsewhere
        )
        self.context.set_default_timeout(15_000)
        if offline:
            self.context.set_offline(True)
        return self.page()

    def page(self) -> Any:
        pages = self.context.pages
        return pages[0] if pages else self.context.new_page()

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None


@pytest.fixture
def playwright_driver() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser(live: Live, tmp_path: Path, playwright_driver: Any) -> Iterator[Browser]:
    handle = Browser(playwright_driver, tmp_path / "profile", live)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def second_browser(live: Live, tmp_path: Path, playwright_driver: Any) -> Iterator[Browser]:
    """Another person's phone (its own profile: storage, service worker, camera)."""
    handle = Browser(playwright_driver, tmp_path / "profile-2", live)
    try:
        yield handle
    finally:
        handle.close()


STAFF_A = {"phone": "13800000001", "password": "hongyi-staff"}
STAFF_B = {"phone": "13800000002", "password": "hongyi-staff"}


def staff_login(page: Any, who: dict[str, str] = STAFF_A) -> None:
    page.goto("/login")
    page.get_by_placeholder("请输入手机号").fill(who["phone"])
    page.get_by_placeholder("请输入密码").fill(who["password"])
    page.locator("[data-test=login-submit]").click()
    page.locator("[data-test=staff-tabbar]").wait_for()


def api_login(live: Live, who: dict[str, str]) -> httpx.Client:
    token = httpx.post(f"{live.base_url}/api/v1/auth/login", json=who).raise_for_status().json()["access_token"]
    return httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"})


def screenshot_both(page: Any, live: Live, name: str) -> None:
    """The staff panel at phone and desktop size."""
    screenshot(page, live, f"{name}-360")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(150)
    screenshot(page, live, f"{name}-1280")
    page.set_viewport_size(VIEWPORT)


def screenshot(page: Any, live: Live, name: str) -> None:
    folder = ARTIFACTS / "screenshots" / live.engine
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def login(page: Any, member: dict[str, Any]) -> None:
    page.goto("/login")
    page.get_by_placeholder("请输入手机号").fill(member["phone"])
    page.get_by_placeholder("请输入密码").fill(MEMBER_PASSWORD)
    page.locator("[data-test=login-submit]").click()
    page.locator("[data-test=open-scanner]").wait_for()


def wait_queued(page: Any, count: int, timeout: float = 15_000) -> None:
    """The home page shows `count` unsynced check-ins."""
    page.wait_for_function(
        f"document.querySelector('[data-test=queued-count]')?.dataset.queued === '{count}'", timeout=timeout
    )


def wait_offline_ready(page: Any) -> None:
    """The service worker controls the page and the keys and schedule are cached."""
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.wait_for_function(
        """async () => {
            const db = await new Promise((ok, bad) => { const r = indexedDB.open('hongyi'); r.onsuccess = () => ok(r.result); r.onerror = bad })
            const get = (key) => new Promise((ok) => { const r = db.transaction('kv').objectStore('kv').get(key); r.onsuccess = () => ok(r.result) })
            const [jwks, schedule] = await Promise.all([get('jwks'), get('schedule')])
            db.close()
            return Boolean(jwks && schedule)
        }"""
    )
