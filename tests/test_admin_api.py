"""Orgs, members, stations, activities through the API: create, edit, move, QR downloads, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import World, new_uuid, now_iso

TRICKY_NAME = '张"小明" 🇨🇳 O\'Neil <b>&'


async def test_org_tree_create_and_move_subtree(world: World) -> None:
    admin = await world.admin()
    communities = [o for o in (await admin.get("/api/v1/orgs")).json() if o["kind"] == "community_committee"]
    community, other_community = communities
    created = await admin.post("/api/v1/orgs", json={"name": TRICKY_NAME, "kind": "branch", "parent_id": community["id"]})
    assert created.status_code == 201, created.text
    branch = created.json()
    assert branch["name"] == TRICKY_NAME and branch["path"] == f"{community['path']}{branch['id']}/" and branch["depth"] == 2
    group = (await admin.post("/api/v1/orgs", json={"name": "新党小组", "kind": "group", "parent_id": branch["id"]})).json()
    member = (await admin.post("/api/v1/members", json={"name": "搬迁测试", "phone": "13512345678", "org_id": group["id"]})).json()
    await admin.post("/api/v1/points/adjustments", json={"member_id": member["id"], "delta": 4, "reason": "移动前积分"})
    moved = await admin.patch(f"/api/v1/orgs/{branch['id']}", json={"parent_id": other_community["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["path"] == f"{other_community['path']}{branch['id']}/"
    group_path = await world.ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", group["id"])
    assert group_path == f"{other_community['path']}{branch['id']}/{group['id']}/"
    member_path = await world.ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member["id"])
    assert member_path == group_path
    board = (await admin.get("/api/v1/points/leaderboard", params={"org_id": other_community["id"]})).json()
    assert any(r["member_id"] == member["id"] and r["earned"] == 4 for r in board["rows"])
    old_board = (await admin.get("/api/v1/points/leaderboard", params={"org_id": community["id"]})).json()
    assert all(r["member_id"] != member["id"] for r in old_board["rows"])
    cycle = await admin.patch(f"/api/v1/orgs/{branch['id']}", json={"parent_id": group["id"]})
    assert cycle.status_code == 400 and cycle.json()["code"] == "cycle"
    missing = await admin.patch("/api/v1/orgs/99999", json={"name": "x"})
    assert missing.status_code == 404


async def test_member_create_edit_transfer_roundtrip(world: World) -> None:
    secretary = await world.secretary()
    branch = await world.ctx.db.fetchval("SELECT org_id FROM members WHERE id = $1", await world.member_id(5))
    body = {
        "name": TRICKY_NAME, "phone": "13600001111", "org_id": branch, "gender": "female", "birth_date": "1950-10-01",
        "id_card": "11010519491231002X", "join_date": "1975-07-01", "member_type": "formal", "tags": ["老党员", "志愿者"],
    }
    created = await secretary.post("/api/v1/members", json=body)
    assert created.status_code == 201, created.text
    member = created.json()
    assert member["name"] == TRICKY_NAME and member["tags"] == ["老党员", "志愿者"] and member["id_card_last4"] == "002X"
    assert not member["activated"] and member["card_version"] == 1
    stored = await world.ctx.db.fetchrow("SELECT id_card_hash, name FROM members WHERE id = $1", member["id"])
    assert stored[0] and "11010519491231002X" not in stored[0] and stored[1] == TRICKY_NAME
    fetched = (await secretary.get(f"/api/v1/members/{member['id']}")).json()
    assert fetched == member
    duplicate = await secretary.post("/api/v1/members", json={**body, "name": "重复"})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "phone_taken"
    edited = await secretary.patch(f"/api/v1/members/{member['id']}", json={"name": "李四", "tags": [], "member_type": "probationary"})
    assert edited.status_code == 200 and edited.json()["name"] == "李四" and edited.json()["tags"] == []
    # transfer to a branch outside the secretary's scope is refused; admin can do it
    other = await world.ctx.db.fetchval("SELECT org_id FROM members WHERE id = $1", await world.member_id(7))
    assert (await secretary.patch(f"/api/v1/members/{member['id']}", json={"org_id": other})).status_code == 404
    admin = await world.admin()
    moved = await admin.patch(f"/api/v1/members/{member['id']}", json={"org_id": other})
    assert moved.status_code == 200 and moved.json()["org_id"] == other
    assert (await secretary.get(f"/api/v1/members/{member['id']}")).status_code == 404
    search = (await admin.get("/api/v1/members", params={"q": "李四"})).json()
    assert [m["id"] for m in search] == [member["id"]]


async def test_member_card_downloads(world: World) -> None:
    member = await world.member(1)
    svg = await member.get(f"/api/v1/members/{world.ids['first_member']}/card")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "王建国" in svg.text and "<path" in svg.text
    png = await member.get(f"/api/v1/members/{world.ids['first_member']}/card", params={"format": "png"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    bad = await member.get(f"/api/v1/members/{world.ids['first_member']}/card", params={"format": "gif"})
    assert bad.status_code == 400


async def test_station_create_and_posters(world: World) -> None:
    admin = await world.admin()
    community = next(o for o in (await admin.get("/api/v1/orgs")).json() if o["kind"] == "community_committee")
    created = await admin.post("/api/v1/stations", json={
        "name": "新服务站 ✨", "org_id": community["id"], "address": "人民路 1 号", "lat": 31.2, "lng": 121.5, "geofence_m": 200,
    })
    assert created.status_code == 201, created.text
    station = created.json()
    assert station["name"] == "新服务站 ✨" and station["poster_version"] == 1
    poster = await admin.get(f"/api/v1/stations/{station['id']}/poster")
    assert poster.status_code == 200 and "新服务站 ✨" in poster.text and "扫码" in poster.text
    png = await admin.get(f"/api/v1/stations/{station['id']}/poster", params={"format": "png"})
    assert png.content.startswith(b"\x89PNG")
    code = (await admin.get(f"/api/v1/stations/{station['id']}/poster", params={"format": "json"})).json()
    assert code["url"] == f"http://testserver/q/{code['token']}" and code["poster_version"] == 1
    staff = await world.staff_a()
    assert (await staff.post("/api/v1/stations", json={"name": "x", "org_id": community["id"]})).status_code in (403, 404)
    invalid = await admin.post("/api/v1/stations", json={"name": "x", "org_id": community["id"], "lat": 91})
    assert invalid.status_code == 400


async def test_activity_create_validate_and_qr(world: World) -> None:
    staff = await world.staff_a()
    now = datetime.now(UTC)
    base = {"type": "party_lecture", "title": "党课：《论持久战》", "station_id": world.ids["station_a"]}
    backwards = await staff.post("/api/v1/activities", json={**base, "starts_at": now.isoformat(), "ends_at": (now - timedelta(hours=1)).isoformat()})
    assert backwards.status_code == 400 and backwards.json()["code"] == "invalid_schedule"
    naive = await staff.post("/api/v1/activities", json={**base, "starts_at": "2026-12-01T09:00:00", "ends_at": "2026-12-01T11:00:00"})
    assert naive.status_code == 400
    unknown_type = await staff.post("/api/v1/activities", json={**base, "type": "party", "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()})
    assert unknown_type.status_code == 400
    created = await staff.post("/api/v1/activities", json={
        **base, "starts_at": (now + timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(hours=3)).isoformat(),
    })
    assert created.status_code == 201
    activity = created.json()
    assert activity["status"] == "planned" and activity["records_hours"] is False
    opens = datetime.fromisoformat(activity["checkin_opens_at"])
    assert opens == datetime.fromisoformat(activity["starts_at"]) - timedelta(minutes=30)
    qr = (await staff.get(f"/api/v1/activities/{activity['id']}/qr")).json()
    assert qr["url"].startswith("http://testserver/q/") and qr["qr_version"] <= 12
    svg = await staff.get(f"/api/v1/activities/{activity['id']}/qr", params={"format": "svg"})
    assert "《论持久战》" in svg.text
    edited = await staff.patch(f"/api/v1/activities/{activity['id']}", json={"title": "改名后的党课", "capacity": 30})
    assert edited.json()["title"] == "改名后的党课" and edited.json()["capacity"] == 30
    bad_window = await staff.patch(f"/api/v1/activities/{activity['id']}", json={"checkin_closes_at": (now - timedelta(days=1)).isoformat()})
    assert bad_window.status_code == 400
    listed = (await staff.get("/api/v1/activities", params={"status": "planned"})).json()
    assert activity["id"] in [a["id"] for a in listed]


async def test_unknown_ids_and_bad_paths_are_clean_4xx(world: World) -> None:
    admin = await world.admin()
    for url in ("/api/v1/members/424242", "/api/v1/stations/424242", "/api/v1/activities/424242", "/api/v1/activities/424242/qr"):
        response = await admin.get(url)
        assert response.status_code == 404 and response.json()["code"] == "not_found", url
    assert (await admin.get("/api/v1/members/not-a-number")).status_code in (400, 404)
    assert (await admin.get("/api/v1/members", params={"limit": 100000})).status_code == 400
    assert (await admin.post("/api/v1/checkins/424242/decision", json={"accept": True})).status_code == 404
    response = await admin.post("/api/v1/checkins/staff", json={
        "member_id": 424242, "activity_id": world.ids["first_activity"], "client_uuid": new_uuid(), "scanned_at": now_iso(),
    })
    assert response.status_code == 404


async def test_malformed_and_oversized_bodies(world: World) -> None:
    member = await world.member(1)
    headers = {"content-type": "application/json"}
    broken = await member.client.post("/api/v1/checkins", content=b'{"client_uuid": ', headers={**member._headers(), **headers})
    assert broken.status_code == 400 and broken.json()["code"] == "malformed_json"
    big = await member.client.post("/api/v1/checkins/sync", content=b'{"items": [' + b" " * (1024 * 1024 + 10) + b"]}", headers={**member._headers(), **headers})
    assert big.status_code == 413 and big.json()["code"] == "body_too_large"
    wrong_type = await member.post("/api/v1/checkins/sync", json={"items": "all of them"})
    assert wrong_type.status_code == 400 and wrong_type.json()["code"] == "invalid_type"
    assert await world.count("SELECT COUNT(*) FROM checkin_attempts") == 0


async def test_spa_fallback_and_missing_api_route(world: World) -> None:
    assert (await world.anon.get("/api/v1/nothing-here")).json()["code"] in ("not_found", "unauthorized")
    assert (await world.anon.get("/members/12")).status_code == 200
    assert (await world.anon.get("/assets/missing.js")).status_code == 404
