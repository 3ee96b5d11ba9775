"""Login, refresh rotation, logout, activation, rate limiting and access-token forgery."""

from __future__ import annotations

import time

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import Api, World


async def test_login_returns_tokens_and_user(world: World) -> None:
    response = await world.anon.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "hongyi-member"})
    assert response.status_code == 200
    data = response.json()
    assert data["token_type"] == "bearer" and data["expires_in"] == 15 * 60
    assert data["user"]["roles"] == ["member"] and data["user"]["member_id"] == world.ids["first_member"]
    me = await Api(world.client, data["access_token"]).get("/api/v1/me")
    assert me.status_code == 200 and me.json()["display_name"] == "王建国"
    stored = await world.ctx.db.fetchval("SELECT token_hash FROM refresh_tokens")
    assert stored != data["refresh_token"] and len(stored) == 64  # hashed at rest


async def test_wrong_password_and_unknown_phone_look_the_same(world: World) -> None:
    wrong = await world.anon.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "nope-nope"})
    unknown = await world.anon.post("/api/v1/auth/login", json={"phone": "13999999999", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"


async def test_not_activated_member_cannot_log_in(world: World) -> None:
    response = await world.anon.post("/api/v1/auth/login", json={"phone": "13900000002", "password": "whatever1"})
    assert response.status_code == 401


async def test_login_is_rate_limited_per_phone(world: World, one_window: None) -> None:
    for _ in range(10):
        await world.anon.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "bad-password"})
    blocked = await world.anon.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "hongyi-member"})
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    other = await world.anon.post("/api/v1/auth/login", json={"phone": "13800000001", "password": "hongyi-staff"})
    assert other.status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_family(world: World) -> None:
    member = await world.login("13900000001", "hongyi-member")
    first = member.login_data["refresh_token"]
    rotated = await world.anon.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    reused = await world.anon.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401 and reused.json()["code"] == "refresh_token_reused"
    # the thief's reuse also killed the legitimate newer token
    assert (await world.anon.post("/api/v1/auth/refresh", json={"refresh_token": second})).status_code == 401


async def test_logout_revokes_refresh_token(world: World) -> None:
    member = await world.login("13900000001", "hongyi-member")
    refresh = member.login_data["refresh_token"]
    assert (await member.post("/api/v1/auth/logout", json={"refresh_token": refresh})).status_code == 204
    assert (await world.anon.post("/api/v1/auth/refresh", json={"refresh_token": refresh})).status_code == 401


async def test_access_token_is_not_a_refresh_token(world: World) -> None:
    member = await world.member(1)
    response = await world.anon.post("/api/v1/auth/refresh", json={"refresh_token": member.token})
    assert response.status_code == 401 and response.json()["code"] == "invalid_refresh_token"


async def test_invite_and_activate(world: World) -> None:
    secretary = await world.secretary()
    member_id = await world.member_id(2)
    invite = await secretary.post(f"/api/v1/members/{member_id}/invite")
    assert invite.status_code == 201, invite.text
    code = invite.json()["code"]
    assert invite.json()["url"].endswith(f"/activate?code={code}")
    short = await world.anon.post("/api/v1/auth/activate", json={"code": code, "password": "short"})
    assert short.status_code == 400
    activated = await world.anon.post("/api/v1/auth/activate", json={"code": code, "password": "new-password-1"})
    assert activated.status_code == 200
    assert activated.json()["user"]["member_id"] == member_id
    assert (await world.anon.post("/api/v1/auth/activate", json={"code": code, "password": "again-password"})).status_code == 400
    assert (await world.anon.post("/api/v1/auth/login", json={"phone": "13900000002", "password": "new-password-1"})).status_code == 200


async def test_forged_access_tokens_are_401(world: World) -> None:
    ctx = world.ctx
    kid = ctx.tokens.keyring.signing.kid
    now = int(time.time())
    claims = {"t": "access", "sub": str(world.ids["admin"]), "iat": now, "exp": now + 600}
    public_pem = ctx.tokens.keyring.signing.public_key.public_bytes(
        encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM,
        format=__import__("cryptography.hazmat.primitives.serialization", fromlist=["PublicFormat"]).PublicFormat.SubjectPublicKeyInfo,
    )
    forged = [
        jwt.encode(claims, key=None, algorithm="none", headers={"kid": kid}),
        jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}),
        jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "unknown"}),
        ctx.tokens.sign({**claims, "exp": now - 1}),  # expired
        ctx.tokens.sign({**claims, "t": "ac"}),  # a QR token is not an access token
        ctx.tokens.station_token(1, 1),
        "garbage",
    ]
    import hmac
    import hashlib
    import base64
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = b64(hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    forged.append(f"{head}.{body}.{signature}")  # HS256 signed with the public key
    valid = ctx.tokens.sign(claims)
    header, payload, sig = valid.split(".")
    tampered_claims = b64(json.dumps({**claims, "sub": str(world.ids["staff_b"])}).encode())
    forged.append(f"{header}.{tampered_claims}.{sig}")
    for token in forged:
        response = await Api(world.client, token).get("/api/v1/me")
        assert response.status_code == 401, token
        assert response.json()["code"] == "unauthorized"
    assert (await Api(world.client, valid).get("/api/v1/me")).status_code == 200


async def test_deactivated_account_loses_access(world: World) -> None:
    member = await world.member(1)
    admin = await world.admin()
    assert (await admin.patch(f"/api/v1/members/{world.ids['first_member']}", json={"status": "history"})).status_code == 200
    assert (await member.get("/api/v1/me")).status_code == 401
    login = await world.anon.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "hongyi-member"})
    assert login.status_code == 403 and login.json()["code"] == "account_disabled"


async def test_public_endpoints(world: World) -> None:
    health = await world.anon.get("/api/v1/health")
    assert health.status_code == 200 and health.json()["database"] == "ok"
    keys = (await world.anon.get("/api/v1/keys")).json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in keys)
    assert (await world.anon.get("/api/v1/me")).status_code == 401
    schema = await world.anon.get("/schema/openapi.json")
    assert schema.status_code == 200 and "/api/v1/checkins/sync" in schema.json()["paths"]
    page = await world.anon.get("/q/abc.def.ghi")
    assert page.status_code == 200 and "红驿" in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_racing_refreshes_rotate_once(world: World) -> None:
    import asyncio

    member = await world.login("13900000001", "hongyi-member")
    token = member.login_data["refresh_token"]
    responses = await asyncio.gather(*(world.anon.post("/api/v1/auth/refresh", json={"refresh_token": token}) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401]
    assert await world.count("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL") == 1
