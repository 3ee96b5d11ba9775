"""Check-in rules of DESIGN §4: every status and reason code, idempotency, batches, staff side."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.keys.keyring import public_jwk
from tests.conftest import World, has_chinese, new_uuid, now_iso


async def activity_token(world: World, activity_id: int) -> str:
    staff = await world.staff_a()
    response = await staff.get(f"/api/v1/activities/{activity_id}/qr")
    assert response.status_code == 200, response.text
    return response.json()["url"]


async def create_activity(world: World, api, **fields) -> dict:
    now = datetime.now(UTC)
    body = {
        "type": "branch_meeting", "title": "测试活动", "station_id": world.ids["station_a"],
        "starts_at": (now - timedelta(minutes=10)).isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat(),
    }
    body.update(fields)
    response = await api.post("/api/v1/activities", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def item(token: str, **kw) -> dict:
    return {"client_uuid": kw.pop("client_uuid", new_uuid()), "token": token, "scanned_at": kw.pop("scanned_at", now_iso()), **kw}


async def test_accepted_checkin_awards_points_once(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    body = item(url)
    first = await member.post("/api/v1/checkins", json=body)
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["status"] == "accepted" and result["reason"] is None
    assert result["points_awarded"] == 1 and result["activity_id"] == world.ids["first_activity"]
    assert "签到成功" in result["message"]

    again = await member.post("/api/v1/checkins", json=body)
    assert again.json() == result  # a replay returns the stored result
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", world.ids["first_member"]) == 1
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", world.ids["first_member"]) == 1
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts WHERE client_uuid = $1", body["client_uuid"]) == 1
    points = (await member.get("/api/v1/me/points")).json()
    assert points["earned"] == 1 and points["total"] == 61 and points["star"] == 1


async def test_second_scan_with_new_uuid_is_duplicate_without_points(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    await member.post("/api/v1/checkins", json=item(url))
    second = await member.post("/api/v1/checkins", json=item(url))
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["points_awarded"] == 0
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts WHERE member_id = $1", world.ids["first_member"]) == 2
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", world.ids["first_member"]) == 1


async def test_concurrent_identical_submissions_make_one_row(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    body = item(url)
    responses = await asyncio.gather(*(member.post("/api/v1/checkins", json=body) for _ in range(12)))
    assert {r.status_code for r in responses} == {200}
    assert {r.json()["status"] for r in responses} == {"accepted"}
    assert len({r.json()["checkin_id"] for r in responses}) == 1
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", world.ids["first_member"]) == 1
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts WHERE member_id = $1", world.ids["first_member"]) == 1
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", world.ids["first_member"]) == 1


async def test_concurrent_batches_from_page_and_service_worker_dedupe(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    batch = {"items": [item(url), item(url), item(url)]}
    a, b = await asyncio.gather(
        member.post("/api/v1/checkins/sync", json=batch), member.post("/api/v1/checkins/sync", json=batch)
    )
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    statuses = sorted(r["status"] for r in a.json()["results"])
    assert statuses == ["accepted", "duplicate", "duplicate"]
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts WHERE member_id = $1", world.ids["first_member"]) == 3
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", world.ids["first_member"]) == 1


async def test_same_uuid_from_another_member_is_rejected_malformed(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    one, two = await world.member(1), await world.member(2)
    body = item(url)
    assert (await one.post("/api/v1/checkins", json=body)).json()["status"] == "accepted"
    other = await two.post("/api/v1/checkins", json=body)
    assert other.status_code == 422
    assert other.json()["status"] == "rejected" and other.json()["reason"] == "malformed"
    assert other.json()["checkin_id"] is None  # never the first member's record


async def test_sync_batch_in_scanned_at_order_with_per_item_results(world: World) -> None:
    """Check-out listed before check-in but scanned after it: order by scanned_at makes both valid."""
    now = datetime.now(UTC)
    volunteer = world.ids["first_activity"] + 1  # the demo's volunteer activity at station A (records hours)
    url = await activity_token(world, volunteer)
    member = await world.member(5)
    check_in = item(url, scanned_at=(now - timedelta(minutes=50)).isoformat())
    check_out = item(url, kind="out", scanned_at=(now - timedelta(minutes=5)).isoformat())
    response = await member.post("/api/v1/checkins/sync", json={"items": [check_out, check_in, item("garbage")]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["client_uuid"] for r in results] == [check_out["client_uuid"], check_in["client_uuid"], results[2]["client_uuid"]]
    assert results[1]["status"] == "accepted"
    assert results[0]["status"] == "accepted" and "签退" in results[0]["message"]
    assert results[2]["status"] == "rejected" and results[2]["reason"] == "malformed"
    hours = await world.ctx.db.fetchrow("SELECT hours, status FROM volunteer_hours WHERE member_id = $1", await world.member_id(5))
    assert hours is not None and hours[1] == "approved"


async def test_batch_over_500_is_refused_and_writes_nothing(world: World) -> None:
    member = await world.member(1)
    url = await activity_token(world, world.ids["first_activity"])
    response = await member.post("/api/v1/checkins/sync", json={"items": [item(url) for _ in range(501)]})
    assert response.status_code == 400
    assert response.json()["code"] == "batch_too_large"
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts") == 0


async def test_full_batch_of_500_is_processed(world: World) -> None:
    member = await world.member(1)
    url = await activity_token(world, world.ids["first_activity"])
    items = [item(url, scanned_at=now_iso(-i)) for i in range(500)]
    response = await member.post("/api/v1/checkins/sync", json={"items": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 500
    assert sum(r["status"] == "accepted" for r in results) == 1
    assert sum(r["status"] == "duplicate" for r in results) == 499
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts") == 500


async def test_forged_signature_is_bad_signature(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    header, payload, signature = url.rsplit("/q/", 1)[1].split(".")
    forged_payload = jwt.utils.base64url_encode(json.dumps({"t": "ac", "aid": 1, "sid": 1, "nbf": 0, "exp": 4102444800}).encode()).decode()
    member = await world.member(1)
    response = await member.post("/api/v1/checkins", json=item(f"{header}.{forged_payload}.{signature}"))
    assert response.status_code == 422
    assert response.json()["reason"] == "bad_signature"
    stored = await world.ctx.db.fetchrow("SELECT status, reason, token FROM checkin_attempts")
    assert stored[0] == "rejected" and stored[1] == "bad_signature" and stored[2].startswith(header)


async def test_other_key_is_unknown_key_and_garbage_is_malformed(world: World) -> None:
    foreign = Ed25519PrivateKey.generate()
    token = jwt.encode({"t": "st", "sid": 1, "v": 1}, foreign, algorithm="EdDSA", headers={"kid": "sother", "typ": None})
    member = await world.member(1)
    assert (await member.post("/api/v1/checkins", json=item(token))).json()["reason"] == "unknown_key"
    assert (await member.post("/api/v1/checkins", json=item("not a token"))).json()["reason"] == "malformed"
    none_alg = jwt.encode({"t": "st", "sid": 1, "v": 1}, key=None, algorithm="none", headers={"kid": world.ctx.tokens.keyring.signing.kid})
    assert (await member.post("/api/v1/checkins", json=item(none_alg))).json()["reason"] in ("bad_signature", "malformed")


async def test_activity_code_outside_window_is_expired(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    response = await member.post("/api/v1/checkins", json=item(url, scanned_at=now_iso(-6 * 3600)))
    assert response.status_code == 422
    assert response.json()["reason"] == "expired"


async def test_cancelled_activity_is_not_open(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    staff = await world.staff_a()
    assert (await staff.patch(f"/api/v1/activities/{world.ids['first_activity']}", json={"status": "cancelled"})).status_code == 200
    member = await world.member(1)
    response = await member.post("/api/v1/checkins", json=item(url))
    assert response.json()["reason"] == "not_open"


async def test_clock_skew_and_offline_limits(world: World) -> None:
    member = await world.member(1)
    station = world.ctx.tokens.qr_url(world.ctx.tokens.station_token(world.ids["station_b"], 1))
    skewed = await member.post("/api/v1/checkins", json=item(station, scanned_at=now_iso(6 * 60)))
    assert skewed.json()["reason"] == "clock_skew"
    too_late = await member.post("/api/v1/checkins", json=item(station, scanned_at=now_iso(-31 * 86400)))
    assert too_late.json()["status"] == "rejected" and too_late.json()["reason"] == "too_late"
    late = await member.post("/api/v1/checkins", json=item(station, scanned_at=now_iso(-4 * 86400)))
    assert late.status_code == 200
    assert late.json()["status"] == "pending_review" and late.json()["reason"] == "late_sync"
    within_skew = await member.post("/api/v1/checkins", json=item(station, scanned_at=now_iso(4 * 60)))
    assert within_skew.json()["status"] in ("accepted", "pending_review")


async def test_station_poster_routes_to_open_activity_or_visit_or_ambiguous(world: World) -> None:
    tokens = world.ctx.tokens
    # Station B has exactly one open activity (volunteer) now.
    url_b = tokens.qr_url(tokens.station_token(world.ids["station_b"], 1))
    member = await world.member(7)
    result = (await member.post("/api/v1/checkins", json=item(url_b))).json()
    assert result["status"] == "accepted" and result["activity_id"] == world.ids["first_activity"] + 5
    # Station A has two open activities now (theme day and volunteer): the member must pick.
    url_a = tokens.qr_url(tokens.station_token(world.ids["station_a"], 1))
    ambiguous = (await member.post("/api/v1/checkins", json=item(url_a))).json()
    assert ambiguous["status"] == "pending_review" and ambiguous["reason"] == "ambiguous"
    picked = (await member.post("/api/v1/checkins", json=item(url_a, activity_id=world.ids["first_activity"] + 1))).json()
    assert picked["status"] == "accepted" and picked["activity_id"] == world.ids["first_activity"] + 1
    # A station with nothing open: a station visit (到站).
    staff = await world.staff_b()
    assert (await staff.patch(f"/api/v1/activities/{world.ids['first_activity'] + 5}", json={"status": "cancelled"})).status_code == 200
    visit = (await (await world.member(8)).post("/api/v1/checkins", json=item(url_b))).json()
    assert visit["status"] == "accepted" and visit["activity_id"] is None and "到站" in visit["message"]


async def test_revoked_poster_is_revoked(world: World) -> None:
    tokens = world.ctx.tokens
    url = tokens.qr_url(tokens.station_token(world.ids["station_b"], 1))
    admin = await world.admin()
    assert (await admin.patch(f"/api/v1/stations/{world.ids['station_b']}", json={"revoke_posters": True})).json()["poster_version"] == 2
    result = (await (await world.member(1)).post("/api/v1/checkins", json=item(url))).json()
    assert result["status"] == "rejected" and result["reason"] == "revoked"


async def test_required_activity_of_another_branch_is_not_allowed(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])  # required, for 幸福里第一党支部
    outsider = await world.member(7)  # 和平苑第一党支部
    result = (await outsider.post("/api/v1/checkins", json=item(url))).json()
    assert result["status"] == "rejected" and result["reason"] == "not_allowed"


async def test_capacity_is_enforced(world: World) -> None:
    staff = await world.staff_a()
    activity = await create_activity(world, staff, type="other", capacity=1)
    url = await activity_token(world, activity["id"])
    assert (await (await world.member(1)).post("/api/v1/checkins", json=item(url))).json()["status"] == "accepted"
    full = (await (await world.member(2)).post("/api/v1/checkins", json=item(url))).json()
    assert full["status"] == "rejected" and full["reason"] == "capacity"


async def test_check_out_without_check_in_is_no_checkin(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"] + 1)
    result = (await (await world.member(1)).post("/api/v1/checkins", json=item(url, kind="out"))).json()
    assert result["status"] == "rejected" and result["reason"] == "no_checkin"


async def test_geofence_sends_to_review(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"] + 1)  # station A has a 300 m geofence
    far = item(url, lat=39.9042, lng=116.4074, accuracy_m=20)  # Beijing, not Shanghai
    result = (await (await world.member(1)).post("/api/v1/checkins", json=far)).json()
    assert result["status"] == "pending_review" and result["reason"] == "outside_geofence"
    near = item(url, lat=31.2305, lng=121.4738, accuracy_m=20)
    assert (await (await world.member(2)).post("/api/v1/checkins", json=near)).json()["status"] == "accepted"


async def test_kiosk_codes(world: World) -> None:
    staff = await world.staff_a()
    key = Ed25519PrivateKey.generate()
    jwk = public_jwk(key.public_key(), "ignored")
    registered = await staff.post(f"/api/v1/stations/{world.ids['station_a']}/kiosks", json={"name": "大厅屏", "public_key_jwk": jwk})
    assert registered.status_code == 201, registered.text
    kid = registered.json()["kid"]
    keys = (await world.anon.get("/api/v1/keys")).json()["keys"]
    assert kid in {k["kid"] for k in keys}

    def kiosk_code(iat: float, aid: int | None = world.ids["first_activity"] + 1) -> str:
        claims = {"t": "rk", "sid": world.ids["station_a"], "iat": int(iat)}
        if aid:
            claims["aid"] = aid
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": None})

    now = datetime.now(UTC).timestamp()
    member = await world.member(1)
    fresh = (await member.post("/api/v1/checkins", json=item(kiosk_code(now - 10)))).json()
    assert fresh["status"] == "accepted"
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE kiosk_id IS NOT NULL") == 1
    stale = (await (await world.member(2)).post("/api/v1/checkins", json=item(kiosk_code(now - 90)))).json()
    assert stale["status"] == "rejected" and stale["reason"] == "expired"
    revoked = await staff.delete(f"/api/v1/kiosks/{registered.json()['id']}")
    assert revoked.status_code == 204
    after = (await (await world.member(3)).post("/api/v1/checkins", json=item(kiosk_code(now)))).json()
    assert after["status"] == "rejected" and after["reason"] == "revoked"
    keys = (await world.anon.get("/api/v1/keys")).json()["keys"]
    assert kid not in {k["kid"] for k in keys}


async def test_member_card_is_not_a_checkin_code_for_members(world: World) -> None:
    token = world.ctx.tokens.member_token(world.ids["first_member"], 1)
    result = (await (await world.member(1)).post("/api/v1/checkins", json=item(token))).json()
    assert result["status"] == "rejected" and result["reason"] == "not_allowed"


async def test_staff_card_and_manual_checkin(world: World) -> None:
    staff = await world.staff_a()
    card = world.ctx.tokens.qr_url(world.ctx.tokens.member_token(world.ids["first_member"], 1))
    body = {"member_token": card, "activity_id": world.ids["first_activity"], "client_uuid": new_uuid(), "scanned_at": now_iso()}
    by_card = await staff.post("/api/v1/checkins/staff", json=body)
    assert by_card.status_code == 200, by_card.text
    assert by_card.json()["status"] == "accepted" and by_card.json()["points_awarded"] == 1
    row = await world.ctx.db.fetchrow("SELECT method, staff_user_id FROM checkins WHERE member_id = $1", world.ids["first_member"])
    assert row[0] == "staff_card" and row[1] == world.ids["staff_a"]
    second = await world.member_id(2)
    manual = await staff.post("/api/v1/checkins/staff", json={
        "member_id": second, "activity_id": world.ids["first_activity"], "client_uuid": new_uuid(), "scanned_at": now_iso(),
    })
    assert manual.json()["status"] == "accepted"
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE method = 'staff_manual'") == 1
    # A lost card, revoked by bumping card_version, no longer works.
    admin = await world.admin()
    assert (await admin.patch(f"/api/v1/members/{world.ids['first_member']}", json={"revoke_card": True})).json()["card_version"] == 2
    lost = await staff.post("/api/v1/checkins/staff", json={**body, "client_uuid": new_uuid()})
    assert lost.status_code == 422 and lost.json()["reason"] == "revoked"


async def test_staff_of_other_station_gets_404(world: World) -> None:
    staff_b = await world.staff_b()
    response = await staff_b.post("/api/v1/checkins/staff", json={
        "member_id": world.ids["first_member"], "activity_id": world.ids["first_activity"], "client_uuid": new_uuid(),
        "scanned_at": now_iso(),
    })
    assert response.status_code == 404


async def test_review_queue_and_decisions(world: World) -> None:
    member = await world.member(1)
    url = await activity_token(world, world.ids["first_activity"])
    late = (await member.post("/api/v1/checkins", json=item(url, scanned_at=now_iso(-10)))).json()
    assert late["status"] == "accepted"
    tokens = world.ctx.tokens
    station = tokens.qr_url(tokens.station_token(world.ids["station_a"], 1))
    ambiguous = (await (await world.member(2)).post("/api/v1/checkins", json=item(station))).json()
    assert ambiguous["status"] == "pending_review"

    staff_b = await world.staff_b()
    assert (await staff_b.get("/api/v1/checkins/review")).json() == []
    assert (await staff_b.post(f"/api/v1/checkins/{ambiguous['checkin_id']}/decision", json={"accept": True})).status_code == 404

    staff = await world.staff_a()
    queue = (await staff.get("/api/v1/checkins/review")).json()
    assert [c["id"] for c in queue] == [ambiguous["checkin_id"]]
    decided = await staff.post(
        f"/api/v1/checkins/{ambiguous['checkin_id']}/decision",
        json={"accept": True, "note": "现场确认", "activity_id": world.ids["first_activity"]},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "accepted" and decided.json()["points_awarded"] == 1
    again = await staff.post(f"/api/v1/checkins/{ambiguous['checkin_id']}/decision", json={"accept": False})
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    mine = (await (await world.member(2)).get("/api/v1/me/checkins")).json()
    assert mine[0]["status"] == "accepted" and mine[0]["points"] == 1


async def test_rejecting_a_pending_checkin_leaves_no_points(world: World) -> None:
    tokens = world.ctx.tokens
    station = tokens.qr_url(tokens.station_token(world.ids["station_b"], 1))
    member = await world.member(1)
    pending = (await member.post("/api/v1/checkins", json=item(station, scanned_at=now_iso(-4 * 86400)))).json()
    staff = await world.staff_b()
    decided = await staff.post(f"/api/v1/checkins/{pending['checkin_id']}/decision", json={"accept": False, "note": "无法核实"})
    assert decided.json()["status"] == "rejected"
    replay = (await member.post("/api/v1/checkins/sync", json={"items": [item(station, client_uuid=pending["client_uuid"])]})).json()
    assert replay["results"][0]["status"] == "rejected"
    assert (await member.get("/api/v1/me/points")).json()["earned"] == 0


async def test_bad_items_get_400_with_chinese_detail(world: World) -> None:
    member = await world.member(1)
    cases = [
        {"client_uuid": "short", "token": "x", "scanned_at": now_iso()},
        {"client_uuid": new_uuid(), "token": "x", "scanned_at": "2026-01-01T00:00:00"},  # no offset
        {"client_uuid": new_uuid(), "token": "x", "scanned_at": now_iso(), "kind": "sideways"},
        {"client_uuid": new_uuid(), "token": "x", "scanned_at": now_iso(), "surprise": 1},
        {"client_uuid": new_uuid(), "token": "", "scanned_at": now_iso()},
        {"client_uuid": new_uuid(), "token": "x", "scanned_at": now_iso(), "lat": 200},
    ]
    for body in cases:
        response = await member.post("/api/v1/checkins", json=body)
        assert response.status_code == 400, (body, response.text)
        data = response.json()
        assert data["code"] and any("\u4e00" <= ch <= "\u9fff" for ch in data["detail"])
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts") == 0


async def test_capacity_holds_when_members_race_for_the_last_places(world: World) -> None:
    staff = await world.staff_a()
    activity = await create_activity(world, staff, type="other", capacity=3)
    url = await activity_token(world, activity["id"])
    members = [await world.member(i) for i in range(1, 11)]
    responses = await asyncio.gather(*(m.post("/api/v1/checkins", json=item(url)) for m in members))
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses.count("accepted") == 3 and statuses.count("rejected") == 7
    assert {r.json()["reason"] for r in responses if r.json()["status"] == "rejected"} == {"capacity"}
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE activity_id = $1", activity["id"]) == 3


async def test_uuid_repeated_inside_one_batch_is_a_replay(world: World) -> None:
    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    same = item(url)
    response = await member.post("/api/v1/checkins/sync", json={"items": [same, same, same]})
    results = response.json()["results"]
    assert results[0] == results[1] == results[2] and results[0]["status"] == "accepted"
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts WHERE client_uuid = $1", same["client_uuid"]) == 1
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", world.ids["first_member"]) == 1


async def test_caps_hold_inside_one_sync_batch(world: World) -> None:
    """13 主题党日 in one offline batch: the year cap of 12 counts the batch's own entries."""
    staff = await world.staff_a()
    urls = [await activity_token(world, (await create_activity(world, staff, type="theme_day"))["id"]) for _ in range(13)]
    member = await world.member(1)
    response = await member.post("/api/v1/checkins/sync", json={"items": [item(u, scanned_at=now_iso(-i)) for i, u in enumerate(urls)]})
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * 13
    assert sum(r["points_awarded"] for r in results) == 12
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", world.ids["first_member"]) == 12
    points = (await member.get("/api/v1/me/points")).json()
    assert points["earned"] == 12
    board = (await (await world.admin()).get("/api/v1/points/leaderboard", params={"org_id": world.ids["street"]})).json()
    assert board["rows"][0]["member_id"] == world.ids["first_member"] and board["rows"][0]["earned"] == 12


async def test_fast_lane_answers_like_the_ordinary_handler(world: World, monkeypatch) -> None:
    """The lean lane in front of /checkins and /checkins/sync sends the same status, headers and bytes
    as the Litestar handler it stands in for (which answers whenever the lane steps aside)."""
    from server.checkins import fastlane

    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    single, batch = item(url), {"items": [item(url), item("garbage")]}
    rejected = item("garbage")
    lane = [await member.post("/api/v1/checkins", json=single), await member.post("/api/v1/checkins/sync", json=batch),
            await member.post("/api/v1/checkins", json=rejected)]

    monkeypatch.setattr(fastlane, "ENABLED", False)
    ordinary = [await member.post("/api/v1/checkins", json=single), await member.post("/api/v1/checkins/sync", json=batch),
                await member.post("/api/v1/checkins", json=rejected)]
    assert [r.status_code for r in lane] == [200, 200, 422]
    for fast, slow in zip(lane, ordinary):
        assert fast.status_code == slow.status_code
        assert fast.content == slow.content  # replays: the stored results, byte for byte
        assert sorted(fast.headers.items()) == sorted(slow.headers.items())


async def test_the_outer_lane_answers_before_litestar_and_steps_aside_for_bad_tokens(world: World, monkeypatch) -> None:
    """The hot paths are answered in front of Litestar's router and auth middleware (that is what
    makes them fast); a missing or bad token still gets the middleware's own 401."""
    from server.core.auth import BearerAuthMiddleware

    seen: list[str] = []
    authenticate = BearerAuthMiddleware.authenticate_request

    async def spy(self, connection):  # noqa: ANN001
        seen.append(connection.scope["path"])
        return await authenticate(self, connection)

    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    monkeypatch.setattr(BearerAuthMiddleware, "authenticate_request", spy)
    single = await member.post("/api/v1/checkins", json=item(url))
    batch = await member.post("/api/v1/checkins/sync", json={"items": [item(url, scanned_at=now_iso(-1))]})
    assert single.status_code == 200 and single.json()["status"] == "accepted"
    assert batch.status_code == 200 and batch.json()["results"][0]["status"] == "duplicate"
    assert seen == []  # neither went through Litestar's middleware

    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        refused = await world.anon.post("/api/v1/checkins", json=item(url), headers=headers)
        assert refused.status_code == 401 and has_chinese(refused.json()["detail"]), headers
    assert seen == ["/api/v1/checkins"] * 3
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", world.ids["first_member"]) == 1


async def test_the_outer_lane_gives_503_when_the_caller_cannot_be_loaded(world: World, monkeypatch) -> None:
    """Loading the caller's roles needs the database; with it away the answer is the usual 503,
    not an error escaping the lane in front of Litestar's exception layer."""
    from server.checkins import fastlane
    from server.core import auth
    from server.core.db import DatabaseUnavailable

    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)

    async def away(ctx, user_id):  # noqa: ANN001
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(fastlane, "load_principal", away)
    monkeypatch.setattr(auth, "load_principal", away)
    for path, body in (("/api/v1/checkins", item(url)), ("/api/v1/checkins/sync", {"items": [item(url)]})):
        response = await member.post(path, json=body)
        assert response.status_code == 503, path
        assert response.json()["code"] == "database_unavailable" and has_chinese(response.json()["detail"])
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", world.ids["first_member"]) == 0


async def test_batch_against_stored_checkins_and_the_row_by_row_redo(world: World, monkeypatch) -> None:
    """A batch plans its rows from the member's live check-ins read up front; if a planned row meets a
    live one it had not seen, the unit is redone row by row — same results either way."""
    from server.checkins import services

    url = await activity_token(world, world.ids["first_activity"])
    member = await world.member(1)
    first = await member.post("/api/v1/checkins", json=item(url))
    assert first.json()["status"] == "accepted"
    batch = {"items": [item(url), item(url, scanned_at=now_iso(-1))]}
    results = (await member.post("/api/v1/checkins/sync", json=batch)).json()["results"]
    assert [r["status"] for r in results] == ["duplicate", "duplicate"]
    assert {r["checkin_id"] for r in results} == {first.json()["checkin_id"]}

    member2 = await world.member(2)
    first2 = await member2.post("/api/v1/checkins", json=item(url))
    monkeypatch.setattr(services.CheckinProcessor, "_remember_live", staticmethod(lambda batch, rows: None))
    results = (await member2.post("/api/v1/checkins/sync", json=batch | {"items": [item(url), item(url)]})).json()["results"]
    assert [r["status"] for r in results] == ["duplicate", "duplicate"]
    assert {r["checkin_id"] for r in results} == {first2.json()["checkin_id"]}
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", await world.member_id(2)) == 1
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", await world.member_id(2)) == 1
