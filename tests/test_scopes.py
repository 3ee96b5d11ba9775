"""Roles and scopes on the server: out of scope is 404 (existence is not leaked), wrong role is 403."""

from __future__ import annotations

from tests.conftest import World, new_uuid, now_iso


async def test_staff_sees_only_their_station(world: World) -> None:
    staff_a, staff_b = await world.staff_a(), await world.staff_b()
    a, b = world.ids["station_a"], world.ids["station_b"]
    assert [s["id"] for s in (await staff_a.get("/api/v1/stations")).json()] == [a]
    assert (await staff_a.get(f"/api/v1/stations/{b}")).status_code == 404
    assert (await staff_a.get(f"/api/v1/stations/{b}/poster")).status_code == 404
    assert (await staff_a.patch(f"/api/v1/stations/{b}", json={"name": "x"})).status_code == 404
    assert (await staff_a.post(f"/api/v1/stations/{b}/kiosks", json={"name": "x", "public_key_jwk": {}})).status_code == 404
    activity_b = world.ids["first_activity"] + 5
    assert (await staff_a.get(f"/api/v1/activities/{activity_b}/qr")).status_code == 404
    assert (await staff_a.get(f"/api/v1/activities/{activity_b}/attendance")).status_code == 404
    assert (await staff_a.post(f"/api/v1/activities/{activity_b}/close")).status_code == 404
    assert (await staff_a.patch(f"/api/v1/activities/{activity_b}", json={"title": "x"})).status_code == 404
    listed = {x["station_id"] for x in (await staff_a.get("/api/v1/activities")).json()}
    assert listed == {a}
    assert (await staff_b.get(f"/api/v1/activities/{world.ids['first_activity']}/attendance")).status_code == 404
    # an id that does not exist looks the same as one out of scope
    missing = await staff_a.get("/api/v1/stations/999999")
    assert missing.status_code == 404 and missing.json() == (await staff_a.get(f"/api/v1/stations/{b}")).json()


async def test_staff_member_lookup_is_limited_to_station_subtree(world: World) -> None:
    staff_a = await world.staff_a()
    members = (await staff_a.get("/api/v1/members", params={"limit": 500})).json()
    assert members and all(m["org_name"].startswith("幸福里") or m["org_name"] == "第一党小组" for m in members)
    assert all("****" in m["phone"] for m in members)  # staff see masked phones
    outsider = await world.member_id(7)  # 和平苑
    assert (await staff_a.get(f"/api/v1/members/{outsider}")).status_code == 404
    assert (await staff_a.patch(f"/api/v1/members/{world.ids['first_member']}", json={"name": "x"})).status_code == 403


async def test_secretary_limited_to_branch(world: World) -> None:
    secretary = await world.secretary()
    members = (await secretary.get("/api/v1/members", params={"limit": 500})).json()
    names = {m["org_name"] for m in members}
    assert names <= {"幸福里第一党支部", "第一党小组"} and members
    outsider = await world.member_id(6)  # 幸福里商户联合党支部, a sibling branch
    assert (await secretary.get(f"/api/v1/members/{outsider}")).status_code == 404
    assert (await secretary.patch(f"/api/v1/members/{outsider}", json={"name": "x"})).status_code == 404
    assert (await secretary.post("/api/v1/points/adjustments", json={"member_id": outsider, "delta": 1, "reason": "测试原因"})).status_code == 404
    # creating a member in another branch: the org is out of scope
    other_branch = await world.ctx.db.fetchval("SELECT org_id FROM members WHERE id = $1", outsider)
    created = await secretary.post("/api/v1/members", json={"name": "新党员", "phone": "13711112222", "org_id": other_branch})
    assert created.status_code == 404
    # a secretary is not an admin
    assert (await secretary.post("/api/v1/orgs", json={"name": "x", "kind": "group", "parent_id": other_branch})).status_code == 404
    assert (await secretary.post("/api/v1/points/rules", json={"code": "xx", "name": "x", "category": "reward", "trigger": "manual", "points": 1})).status_code == 403


async def test_member_sees_only_themself(world: World) -> None:
    member = await world.member(1)
    listed = (await member.get("/api/v1/members")).json()
    assert [m["id"] for m in listed] == [world.ids["first_member"]]
    other = await world.member_id(2)
    assert (await member.get(f"/api/v1/members/{other}")).status_code == 404
    assert (await member.get(f"/api/v1/members/{other}/card")).status_code == 404
    assert (await member.get(f"/api/v1/members/{world.ids['first_member']}/card")).status_code == 200
    assert (await member.post(f"/api/v1/members/{world.ids['first_member']}/invite")).status_code == 403
    assert (await member.get("/api/v1/checkins/review")).status_code == 403
    assert (await member.post("/api/v1/points/adjustments", json={"member_id": other, "delta": 5, "reason": "自己加分"})).status_code == 403
    assert (await member.get(f"/api/v1/activities/{world.ids['first_activity']}/attendance")).status_code == 404
    assert (await member.get(f"/api/v1/stations/{world.ids['station_a']}/poster")).status_code == 404
    # members may read the schedule of their own street
    assert (await member.get(f"/api/v1/activities/{world.ids['first_activity']}")).status_code == 200
    assert (await member.post("/api/v1/activities", json={
        "type": "other", "title": "x", "station_id": world.ids["station_a"], "starts_at": now_iso(), "ends_at": now_iso(3600),
    })).status_code == 404
    staff_only = await member.post("/api/v1/checkins/staff", json={
        "member_id": other, "activity_id": world.ids["first_activity"], "client_uuid": new_uuid(), "scanned_at": now_iso(),
    })
    assert staff_only.status_code == 403  # a role that never checks others in, whatever the activity


async def test_other_street_is_invisible(world: World) -> None:
    other = await _seed_other_street(world)
    admin = await world.admin()
    assert (await admin.get(f"/api/v1/stations/{other['station_a']}")).status_code == 404
    assert (await admin.get(f"/api/v1/members/{other['first_member']}")).status_code == 404
    assert (await admin.patch(f"/api/v1/orgs/{other['street']}", json={"name": "x"})).status_code == 404
    assert (await admin.get("/api/v1/points/leaderboard", params={"org_id": other["street"]})).status_code == 404
    member = await world.member(1)
    assert (await member.get(f"/api/v1/activities/{other['first_activity']}")).status_code == 404


async def _seed_other_street(world: World) -> dict[str, int]:
    """A second street: same shape, other phones."""
    ctx = world.ctx
    from server.orgs.services import create_root
    from server.core.timeutil import utcnow

    street = await create_root(ctx, "另一街道党工委")
    async with ctx.db.transaction():
        station = await ctx.db.fetchval(
            "INSERT INTO stations (name, org_id, org_path, address, service_hours, poster_version, status, created_at)"
            " VALUES ('别处服务站', $1, $2, '', '', 1, 'active', $3) RETURNING id",
            street, f"/{street}/", utcnow(),
        )
        member = await ctx.db.fetchval(
            "INSERT INTO members (name, phone, member_type, status, org_id, org_path, tags, card_version, created_at, updated_at)"
            " VALUES ('外街党员', '13600000001', 'formal', 'normal', $1, $2, $3, 1, $4, $4) RETURNING id",
            street, f"/{street}/", [], utcnow(),
        )
        activity = await ctx.db.fetchval(
            "INSERT INTO activities (type, title, description, station_id, org_id, org_path, starts_at, ends_at,"
            " checkin_opens_at, checkin_closes_at, required, records_hours, status, created_at)"
            " VALUES ('other', '外街活动', '', $1, $2, $3, $4, $4, $4, $4, $5, $5, 'planned', $4) RETURNING id",
            station, street, f"/{street}/", utcnow(), False,
        )
    return {"street": street, "station_a": station, "first_member": member, "first_activity": activity}


async def test_unauthenticated_requests_are_401_everywhere(world: World) -> None:
    anon = world.anon
    for method, url in [
        ("get", "/api/v1/me"), ("get", "/api/v1/orgs"), ("get", "/api/v1/members"), ("get", "/api/v1/stations"),
        ("get", "/api/v1/activities"), ("get", "/api/v1/me/points"), ("get", "/api/v1/points/leaderboard"),
        ("get", "/api/v1/points/rules"), ("get", "/api/v1/checkins/review"), ("get", "/api/v1/me/checkins"),
        ("post", "/api/v1/checkins"), ("post", "/api/v1/checkins/sync"), ("post", "/api/v1/auth/logout"),
    ]:
        response = await getattr(anon, method)(url)
        assert response.status_code == 401, url
        assert response.json()["code"] == "unauthorized"


async def test_admin_reaches_whole_street(world: World) -> None:
    admin = await world.admin()
    stations = {s["id"] for s in (await admin.get("/api/v1/stations")).json()}
    assert stations == {world.ids["station_a"], world.ids["station_b"]}
    members = (await admin.get("/api/v1/members", params={"limit": 500})).json()
    assert len(members) == 40 and all("****" not in m["phone"] for m in members)
    orgs = (await admin.get("/api/v1/orgs")).json()
    assert len(orgs) == 8
