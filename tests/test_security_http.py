"""HTTP-level protections: security headers on every kind of answer, CORS locked to the configured
origins, and login brute force throttled per phone and per client address (DESIGN §7; settings
``CORS_ORIGINS``, ``LOGIN_ATTEMPTS_PER_MINUTE``, ``TRUSTED_PROXIES``, ``REDIS_URL``)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.settings import Settings
from tests.conftest import IN_CI, World, has_chinese, new_uuid, now_iso

THROTTLED = "登录尝试过于频繁，请一分钟后再试"


@asynccontextmanager
async def served(settings: Settings, seed: bool = True) -> AsyncIterator[Any]:
    app = create_app(settings)
    async with LifespanManager(app):
        if seed:
            from server.seed import _seed

            await _seed(app.state.ctx)
        yield app


def client(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client whose socket address is ``address`` (what the server sees as the peer)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 50000)), base_url="http://testserver")


# ------------------------------------------------------------------------------------ headers


def _assert_protected(response: httpx.Response, what: str) -> str:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("x-frame-options") == "DENY", what
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, what
    return csp


async def test_every_kind_of_answer_carries_the_security_headers(world: World, tmp_path: Path) -> None:
    admin, member = await world.admin(), await world.member(1)
    activity = world.ids["first_activity"]
    code = (await admin.get(f"/api/v1/activities/{activity}/qr")).json()["url"]
    answers = {
        "api json": await admin.get("/api/v1/stations"),
        "401 from the auth middleware": await world.anon.get("/api/v1/me"),
        "404 unknown api path": await admin.get("/api/v1/nothing"),
        "400 bad input": await admin.post("/api/v1/orgs", json={"x": 1}),
        "check-in (fast lane)": await member.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": code,
                                                                            "scanned_at": now_iso()}),
        "file download": await admin.get(f"/api/v1/activities/{activity}/attendance.xlsx"),
        "svg": await admin.get(f"/api/v1/members/{world.ids['first_member']}/card"),
        "jwks (public)": await world.anon.get("/api/v1/keys"),
    }
    for what, response in answers.items():
        assert response.status_code < 500, what
        csp = _assert_protected(response, what)
        assert "default-src 'self'" in csp, what

    docs = await world.anon.get("/schema/scalar")
    assert docs.status_code == 200
    _assert_protected(docs, "api docs")  # a looser CSP for the docs page's CDN scripts, still never framed


async def test_the_pwa_shell_csp(settings: Settings, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>红驿</title>", encoding="utf-8")
    (dist / "assets" / "app-1.js").write_text("console.log(1)")
    async with served(replace(settings, pwa_dist=dist), seed=False) as app, client(app) as http:
        for path in ("/", "/q/eyJhbGciOiJFZERTQSJ9.e30.c2ln", "/activate?code=x", "/assets/app-1.js"):
            response = await http.get(path)
            assert response.status_code == 200, path
            csp = _assert_protected(response, path)
            directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
            assert directives["default-src"] == ["'self'"], csp
            # Scripts: own files and WebAssembly (the QR decoder) only — no inline script, no eval.
            assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'"], csp
            assert directives["connect-src"] == ["'self'"] and directives["base-uri"] == ["'self'"], csp
            assert directives["form-action"] == ["'self'"] and "object-src" not in directives, csp  # default-src covers it
            assert response.headers["referrer-policy"] == "same-origin"


# ------------------------------------------------------------------------------------ CORS

ORIGIN = "https://hongyi.example.cn"


def _preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"}


async def test_cors_allows_only_the_configured_origin(settings: Settings) -> None:
    async with served(replace(settings, cors_origins=(ORIGIN,)), seed=False) as app, client(app) as http:
        allowed = await http.options("/api/v1/checkins/sync", headers=_preflight(ORIGIN))
        assert allowed.status_code in (200, 204)
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers  # bearer tokens, never cookies
        assert "Origin" in allowed.headers.get("vary", "")
        _assert_protected(allowed, "preflight")  # answered by the CORS layer, outside the middleware stack

        for other in ("https://evil.example", "http://hongyi.example.cn", "https://hongyi.example.cn.evil.example", "null"):
            refused = await http.options("/api/v1/checkins/sync", headers=_preflight(other))
            assert refused.status_code == 400, other
            assert "access-control-allow-origin" not in refused.headers, other
            _assert_protected(refused, "refused preflight")
            simple = await http.get("/api/v1/health", headers={"Origin": other})
            assert "access-control-allow-origin" not in simple.headers, other

        same = await http.get("/api/v1/health", headers={"Origin": ORIGIN})
        assert same.headers["access-control-allow-origin"] == ORIGIN

        # A check-in from the allowed origin takes the CORS layer too (the lane in front of Litestar
        # steps aside for it): answered, with the CORS header.
        from server.seed import _seed

        await _seed(app.state.ctx)
        user_id = await app.state.ctx.db.fetchval("SELECT id FROM users WHERE member_id IS NOT NULL ORDER BY id LIMIT 1")
        bearer = app.state.ctx.tokens.access_token(user_id, 15)[0]
        checkin = await http.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": "garbage", "scanned_at": now_iso()},
                                  headers={"Origin": ORIGIN, "Authorization": f"Bearer {bearer}"})
        assert checkin.status_code == 422 and checkin.json()["reason"] == "malformed"
        assert checkin.headers["access-control-allow-origin"] == ORIGIN
        _assert_protected(checkin, "cross-origin check-in")


async def test_without_configured_origins_no_cross_origin_access(settings: Settings) -> None:
    async with served(replace(settings, cors_origins=()), seed=False) as app, client(app) as http:
        for origin in (ORIGIN, "https://evil.example"):
            preflight = await http.options("/api/v1/checkins/sync", headers=_preflight(origin))
            assert "access-control-allow-origin" not in preflight.headers
            simple = await http.get("/api/v1/health", headers={"Origin": origin})
            assert "access-control-allow-origin" not in simple.headers


# ------------------------------------------------------------------------------------ brute force


async def _login(http: httpx.AsyncClient, phone: str, password: str, **headers: str) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"phone": phone, "password": password}, headers=headers)


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == "rate_limited" and body["detail"] == THROTTLED and has_chinese(body["detail"])


async def test_login_is_throttled_per_client_address(settings: Settings, one_window: None) -> None:
    """Password spraying: one try per phone over many phones, from one address. Limit 2 a phone a
    minute → 10 an address (five times the per-phone limit)."""
    async with served(replace(settings, login_attempts_per_minute=2)) as app:
        async with client(app, "203.0.113.7") as sprayer, client(app, "198.51.100.9") as neighbour:
            for i in range(10):
                assert (await _login(sprayer, f"1390000{i + 10:04d}", "guess-Pass-1")).status_code == 401
            # The 11th try from that address is refused, even with the right password of a fresh phone…
            _assert_throttled(await _login(sprayer, "13900000001", "hongyi-member"))
            # …and a forged X-Forwarded-For does not help: no proxy is trusted.
            _assert_throttled(await _login(sprayer, "13900000001", "hongyi-member", **{"X-Forwarded-For": "192.0.2.1"}))
            # Another address is not affected.
            assert (await _login(neighbour, "13900000001", "hongyi-member")).status_code == 200


async def test_login_is_throttled_per_phone_across_addresses(settings: Settings, one_window: None) -> None:
    async with served(replace(settings, login_attempts_per_minute=3)) as app:
        for i in range(3):
            async with client(app, f"192.0.2.{i + 1}") as http:
                assert (await _login(http, "13900000001", "guess-Pass-1")).status_code == 401
        async with client(app, "192.0.2.99") as http:
            _assert_throttled(await _login(http, "13900000001", "hongyi-member"))  # the right password, too late
            assert (await _login(http, "13800000001", "hongyi-staff")).status_code == 200  # another phone is fine


async def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(settings: Settings, one_window: None) -> None:
    proxied = replace(settings, login_attempts_per_minute=1, trusted_proxies=("10.0.0.2",))
    async with served(proxied) as app, client(app, "10.0.0.2") as proxy:
        for i in range(5):  # one client's five tries through the proxy: its limit (5 an address) is reached
            await _login(proxy, f"1390000{i + 10:04d}", "guess-Pass-1", **{"X-Forwarded-For": "198.51.100.20"})
        # A spoofed left-most hop does not reset it: the hop the proxy saw is what counts.
        _assert_throttled(await _login(proxy, "13900000001", "hongyi-member",
                                       **{"X-Forwarded-For": "192.0.2.50, 198.51.100.20"}))
        ok = await _login(proxy, "13900000001", "hongyi-member", **{"X-Forwarded-For": "198.51.100.21"})
        assert ok.status_code == 200, ok.text


async def test_the_shared_redis_store_throttles_too(settings: Settings, one_window: None) -> None:
    """Several workers share the counters through Redis (keys per minute; unique address and phone here)."""
    import redis.asyncio as redis

    url = "redis://127.0.0.1:6379/0"
    try:
        probe = redis.from_url(url)
        await probe.ping()
        await probe.aclose()
    except Exception as exc:  # noqa: BLE001 — any connection problem means "no Redis here"
        if IN_CI:
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    address = f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with served(replace(settings, redis_url=url, login_attempts_per_minute=1)) as app:
        async with client(app, address) as http:
            for i in range(5):
                await _login(http, f"1399{random.randrange(10**7):07d}", "guess-Pass-1")
            _assert_throttled(await _login(http, "13900000001", "hongyi-member"))


async def test_with_redis_unreachable_logins_work_and_stay_throttled(settings: Settings, one_window: None) -> None:
    """Redis down (nothing listens on the port): not a 500 — each worker counts on its own meanwhile."""
    import socket

    with socket.socket() as probe:  # a free port: connections are refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with served(replace(settings, redis_url=f"redis://127.0.0.1:{port}/0", login_attempts_per_minute=2)) as app:
        async with client(app, "192.0.2.200") as http:
            assert (await _login(http, "13900000001", "hongyi-member")).status_code == 200
            for _ in range(2):
                assert (await _login(http, "13900000002", "guess-Pass-1")).status_code == 401
            _assert_throttled(await _login(http, "13900000002", "hongyi-member"))
