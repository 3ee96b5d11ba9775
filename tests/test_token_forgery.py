"""Forged, altered, stale and misused tokens (DESIGN §3, §7): each is refused with its stable code,
and nothing is written for it but the audit attempt — no check-in, no ledger entry.

QR codes are judged by ``POST /checkins`` (a member's scan) and ``POST /checkins/staff`` (a member
card); access tokens by any authenticated route; refresh tokens by ``POST /auth/refresh``.
test_auth.py covers the access-token basics (alg none, wrong key, unknown kid, expired, tampered).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.keys.keyring import public_jwk
from tests.conftest import Api, World, has_chinese, new_uuid, now_iso


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def alg_none(claims: dict[str, Any], kid: str, signature: str = "") -> str:
    """Unsigned (the JWS has an empty signature, not even a valid shape) or with some bytes in its place."""
    return f"{_segments({'alg': 'none', 'kid': kid}, claims)}.{signature}"


def hs256_with_public_key(world: World, claims: dict[str, Any], kid: str) -> str:
    """The classic confusion attack: HMAC keyed with the server's (public) verification key."""
    public_pem = world.ctx.tokens.keyring.signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _segments({"alg": "HS256", "kid": kid}, claims)
    return f"{signing_input}.{_b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"


def other_key(claims: dict[str, Any], kid: str) -> str:
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid, "typ": None})


def tampered(token: str, **changes: Any) -> str:
    """The real signature over claims changed afterwards."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_b64(json.dumps({**claims, **changes}).encode())}.{signature}"


async def _register_kiosk(world: World, station: str = "station_a") -> tuple[Ed25519PrivateKey, str, int]:
    key = Ed25519PrivateKey.generate()
    staff = await (world.staff_a() if station == "station_a" else world.staff_b())
    registered = await staff.post(f"/api/v1/stations/{world.ids[station]}/kiosks",
                                  json={"name": "大厅屏", "public_key_jwk": public_jwk(key.public_key(), "x")})
    assert registered.status_code == 201, registered.text
    return key, registered.json()["kid"], registered.json()["id"]


def _kiosk_code(key: Ed25519PrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": None})


async def _activity_window(world: World, activity_id: int) -> tuple[int, int, int]:
    station, opens, closes = await world.ctx.db.fetchrow(
        "SELECT station_id, checkin_opens_at, checkin_closes_at FROM activities WHERE id = $1", activity_id
    )
    return int(station), int(opens.timestamp()), int(closes.timestamp())


async def _nothing_written(world: World, member_id: int) -> None:
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", member_id) == 0
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", member_id) == 0


async def _scan(member: Api, token: str, scanned_at: str | None = None) -> dict[str, Any]:
    response = await member.post("/api/v1/checkins", json={
        "client_uuid": new_uuid(), "token": token, "scanned_at": scanned_at or now_iso(),
    })
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == "rejected" and has_chinese(body["message"]), body
    return body


async def test_forged_and_stale_qr_codes_are_rejected_without_a_checkin(world: World) -> None:
    ctx = world.ctx
    tokens = ctx.tokens
    kid = tokens.keyring.signing.kid
    activity = world.ids["first_activity"]  # open now at station A, required by 幸福里第一党支部
    station_id, opens, closes = await _activity_window(world, activity)
    activity_b = activity + 4  # at station B
    kiosk_key, kiosk_kid, _ = await _register_kiosk(world)
    now = int(time.time())

    st = {"t": "st", "sid": station_id, "v": 1}
    ac = {"t": "ac", "aid": activity, "sid": station_id, "nbf": opens, "exp": closes}
    rk = {"t": "rk", "sid": station_id, "aid": activity, "iat": now}
    cases: list[tuple[str, str, str, str | None]] = [  # (what, token, reason, scanned_at)
        ("st alg none", alg_none(st, kid), "malformed", None),
        ("ac alg none", alg_none(ac, kid), "malformed", None),
        ("rk alg none", alg_none(rk, kiosk_kid), "malformed", None),
        ("st alg none, some signature", alg_none(st, kid, "AAAA"), "bad_signature", None),
        ("ac alg none, some signature", alg_none(ac, kid, "AAAA"), "bad_signature", None),
        ("rk alg none, some signature", alg_none(rk, kiosk_kid, "AAAA"), "bad_signature", None),
        ("st HS256 with the public key", hs256_with_public_key(world, st, kid), "bad_signature", None),
        ("ac HS256 with the public key", hs256_with_public_key(world, ac, kid), "bad_signature", None),
        ("rk HS256 with the public key", hs256_with_public_key(world, rk, kiosk_kid), "bad_signature", None),
        ("st unknown kid", other_key(st, "s0000dead"), "unknown_key", None),
        ("ac unknown kid", other_key(ac, "s0000dead"), "unknown_key", None),
        ("rk unknown kiosk", other_key(rk, "k999999"), "unknown_key", None),
        ("ac another key under the server kid", other_key(ac, kid), "bad_signature", None),
        ("rk another key under the kiosk kid", other_key(rk, kiosk_kid), "bad_signature", None),
        ("st tampered: other station", tampered(tokens.station_token(station_id, 1), sid=world.ids["station_b"]),
         "bad_signature", None),
        ("ac tampered: longer window", tampered(tokens.activity_token(activity, station_id, opens, closes), exp=closes + 86400),
         "bad_signature", None),
        ("ac tampered: other activity", tampered(tokens.activity_token(activity, station_id, opens, closes), aid=activity_b),
         "bad_signature", None),
        ("rk tampered: fresh iat", tampered(_kiosk_code(kiosk_key, kiosk_kid, {**rk, "iat": now - 600}), iat=now),
         "bad_signature", None),
        ("ac expired: last week's code", tokens.activity_token(activity, station_id, now - 7 * 86400, now - 6 * 86400),
         "expired", None),
        ("ac scanned after its window", tokens.activity_token(activity, station_id, now - 7200, now - 600),
         "expired", None),
        ("ac not yet valid", tokens.activity_token(activity, station_id, now + 3600, now + 7200), "expired", None),
        ("rk replayed 61 s later", _kiosk_code(kiosk_key, kiosk_kid, {**rk, "iat": now - 61}), "expired", None),
        ("st after the poster version bump", tokens.station_token(station_id, 0), "revoked", None),
        ("mb: a member card is not a check-in code", tokens.member_token(world.ids["first_member"], 1), "not_allowed", None),
        ("access token as a QR code", tokens.access_token(world.ids["admin"], 15)[0], "malformed", None),
        ("garbage", "eyJhbGciOiJFZERTQSJ9.e30", "malformed", None),
    ]
    member = await world.member(1)
    for what, token, reason, scanned_at in cases:
        body = await _scan(member, tokens.qr_url(token), scanned_at)
        assert body["reason"] == reason, (what, body)
    await _nothing_written(world, world.ids["first_member"])
    # Every scan that reached the server is kept for review, as rejected.
    attempts = await ctx.db.fetch("SELECT status, reason FROM checkin_attempts WHERE member_id = $1", world.ids["first_member"])
    assert sorted(r[1] for r in attempts) == sorted(c[2] for c in cases) and {r[0] for r in attempts} == {"rejected"}
    # The genuine codes still work, so the refusals above were about the forgeries.
    fresh = _kiosk_code(kiosk_key, kiosk_kid, {**rk, "iat": int(time.time())})
    accepted = await member.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": fresh, "scanned_at": now_iso()})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text


async def test_a_kiosk_key_signs_only_its_own_rotating_codes(world: World) -> None:
    """A kiosk key lives in a tablet's browser: it must not mint activity, poster or member-card codes,
    nor rotating codes of another station."""
    tokens = world.ctx.tokens
    key, kid, _ = await _register_kiosk(world)  # a kiosk of station A
    activity_b = world.ids["first_activity"] + 5  # open now at station B, for anyone
    station_b, opens, closes = await _activity_window(world, activity_b)
    member = await world.member(7)  # 和平苑第一党支部: eligible for station B's activities
    member_id = await world.member_id(7)
    forged = [
        ("ac for station B", {"t": "ac", "aid": activity_b, "sid": station_b, "nbf": opens, "exp": closes}),
        ("st for station B", {"t": "st", "sid": station_b, "v": 1}),
        ("rk for station B", {"t": "rk", "sid": station_b, "aid": activity_b, "iat": int(time.time())}),
    ]
    for what, claims in forged:
        body = await _scan(member, _kiosk_code(key, kid, claims))
        assert body["reason"] == "bad_signature", (what, body)
    await _nothing_written(world, member_id)

    # A member card signed by the kiosk key, scanned first as a self check-in (cached as verified),
    # then shown to staff: still not a card.
    card = _kiosk_code(key, kid, {"t": "mb", "mid": member_id, "v": 1})
    await _scan(member, card)
    staff_b = await world.staff_b()
    response = await staff_b.post("/api/v1/checkins/staff", json={
        "member_token": tokens.qr_url(card), "activity_id": activity_b, "client_uuid": new_uuid(), "scanned_at": now_iso(),
    })
    assert response.status_code == 422 and response.json()["code"] == "unknown_key", response.text
    await _nothing_written(world, member_id)


async def test_member_cards_forged_or_revoked_at_the_staff_scanner(world: World) -> None:
    ctx = world.ctx
    tokens = ctx.tokens
    kid = tokens.keyring.signing.kid
    member_id = world.ids["first_member"]
    activity = world.ids["first_activity"]
    staff = await world.staff_a()
    card = {"t": "mb", "mid": member_id, "v": 1}

    async def scan_card(token: str) -> Any:
        return await staff.post("/api/v1/checkins/staff", json={
            "member_token": tokens.qr_url(token), "activity_id": activity, "client_uuid": new_uuid(), "scanned_at": now_iso(),
        })

    for what, token, code in [
        ("alg none", alg_none(card, kid), "malformed"),
        ("alg none, some signature", alg_none(card, kid, "AAAA"), "bad_signature"),
        ("HS256 with the public key", hs256_with_public_key(world, card, kid), "bad_signature"),
        ("unknown kid", other_key(card, "s0000dead"), "unknown_key"),
        ("another key under the server kid", other_key(card, kid), "bad_signature"),
        ("tampered: another member", tampered(tokens.member_token(await world.member_id(2), 1), mid=member_id), "bad_signature"),
        ("an activity code", tokens.activity_token(activity, world.ids["station_a"], 0, 2**31), "malformed"),
    ]:
        response = await scan_card(token)
        assert response.status_code == 422, (what, response.text)
        assert response.json()["code"] == code and has_chinese(response.json()["detail"]), (what, response.json())
    await _nothing_written(world, member_id)

    # A lost card: the admin bumps card_version; the old card is refused (kept as a rejected attempt).
    old = tokens.member_token(member_id, 1)
    admin = await world.admin()
    assert (await admin.patch(f"/api/v1/members/{member_id}", json={"revoke_card": True})).json()["card_version"] == 2
    refused = await scan_card(old)
    assert refused.status_code == 422 and refused.json()["reason"] == "revoked", refused.text
    await _nothing_written(world, member_id)
    assert await world.count(
        "SELECT COUNT(*) FROM checkin_attempts WHERE member_id = $1 AND reason = 'revoked'", member_id
    ) == 1
    accepted = await scan_card(tokens.member_token(member_id, 2))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text


async def test_access_tokens_signed_by_kiosks_or_of_qr_kind_are_401(world: World) -> None:
    tokens = world.ctx.tokens
    key, kid, _ = await _register_kiosk(world)
    now = int(time.time())
    access = {"t": "access", "sub": str(world.ids["admin"]), "iat": now, "exp": now + 600}
    for what, token in [
        ("signed by a registered kiosk key", _kiosk_code(key, kid, access)),
        ("a member card", tokens.member_token(world.ids["first_member"], 1)),
        ("a station poster", tokens.station_token(world.ids["station_a"], 1)),
        ("no expiry", tokens.sign({"t": "access", "sub": str(world.ids["admin"])})),
        ("a refresh token", (await world.login("13900000001", "hongyi-member")).login_data["refresh_token"]),
    ]:
        response = await Api(world.client, token).get("/api/v1/me")
        assert response.status_code == 401 and response.json()["code"] == "unauthorized", what


async def test_refresh_refuses_access_tokens_revoked_and_expired_tokens(world: World) -> None:
    member = await world.login("13900000001", "hongyi-member")

    async def refresh(token: str) -> Any:
        return await world.anon.post("/api/v1/auth/refresh", json={"refresh_token": token})

    as_refresh = await refresh(member.token or "")
    assert as_refresh.status_code == 401 and as_refresh.json()["code"] == "invalid_refresh_token"

    revoked = member.login_data["refresh_token"]
    assert (await member.post("/api/v1/auth/logout", json={"refresh_token": revoked})).status_code == 204
    after_logout = await refresh(revoked)
    assert after_logout.status_code == 401 and after_logout.json()["code"] == "invalid_refresh_token"

    expiring = (await world.login("13900000001", "hongyi-member")).login_data["refresh_token"]
    await world.ctx.db.execute("UPDATE refresh_tokens SET expires_at = $1 WHERE revoked_at IS NULL",
                               datetime.now(UTC) - timedelta(seconds=1))
    expired = await refresh(expiring)
    assert expired.status_code == 401 and expired.json()["code"] == "invalid_refresh_token"
    assert has_chinese(expired.json()["detail"])
    # Nothing was issued for any of them: the only rows are the two logins'.
    assert await world.count("SELECT COUNT(*) FROM refresh_tokens") == 2
