"""一帮一 pairings: CRUD and scopes, idempotent visits (replays, concurrent copies), verification with
points, caps and reversals, overdue at the interval boundary, per-branch stats, bad input."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any

from tests.conftest import Api, World, has_chinese, new_uuid, now_iso

P = "/api/v1/pairings"


def _today(world: World) -> date:
    return datetime.now(world.ctx.settings.tz).date()


def _noon(world: World, day: date) -> str:
    return datetime.combine(day, time(12), world.ctx.settings.tz).isoformat()


async def _org_of(world: World, member_index: int) -> int:
    return int(await world.ctx.db.fetchval("SELECT org_id FROM members WHERE id = $1", await world.member_id(member_index)))


async def _branch0(world: World) -> int:
    """幸福里第一党支部 (member 1 sits in its 党小组)."""
    return int(await world.ctx.db.fetchval("SELECT id FROM orgs WHERE name = '幸福里第一党支部'"))


async def _create(api: Api, world: World, member_index: int, **extra: Any) -> dict[str, Any]:
    body = {"member_id": await world.member_id(member_index), "kind": "resident", "name": "李阿婆", "category": "独居老人",
            "contact": "13912345678", "goals": "每月上门探望，帮助就医", **extra}
    response = await api.post(P, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _visit(api: Api, pairing_id: int, **extra: Any) -> Any:
    body = {"client_uuid": new_uuid(), "visited_at": now_iso(-3600), "mode": "home", "content": "上门了解生活情况", **extra}
    return await api.post(f"{P}/{pairing_id}/visits", json=body)


def _assert_error(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert has_chinese(body["detail"]), body
    if code is not None:
        assert body["code"] == code, body


async def test_crud_scopes_and_masking(world: World) -> None:
    secretary, staff_a, staff_b, admin = await world.secretary(), await world.staff_a(), await world.staff_b(), await world.admin()
    member1, member2 = await world.member(1), await world.member(2)
    created = await _create(secretary, world, 1, interval_days=20)
    pid = created["id"]
    assert created["member_id"] == await world.member_id(1) and created["member_name"] == "王建国"
    assert created["contact"] == "13912345678" and created["contact_masked"] is False
    assert created["status"] == "active" and created["start_date"] == _today(world).isoformat()
    assert created["interval_days"] == 20 and created["visits"] == [] and created["visit_count"] == 0
    assert created["due_on"] == (_today(world) + timedelta(days=20)).isoformat() and created["days_overdue"] == 0

    # The helper: own pairings by default; masked in the list, in full in the detail.
    mine = (await member1.get(P)).json()
    assert [p["id"] for p in mine] == [pid] and mine[0]["contact"] == "139****5678" and mine[0]["contact_masked"]
    assert (await member1.get(P, params={"mine": "true"})).json()[0]["id"] == pid
    detail = (await member1.get(f"{P}/{pid}")).json()
    assert detail["contact"] == "13912345678" and detail["contact_masked"] is False
    # Staff of the station (community subtree): sees it, masked; managers see the contact.
    listed = (await staff_a.get(P)).json()
    assert [p["contact"] for p in listed if p["id"] == pid] == ["139****5678"]
    assert (await staff_a.get(f"{P}/{pid}")).json()["contact_masked"] is True
    assert [p["contact"] for p in (await admin.get(P)).json() if p["id"] == pid] == ["13912345678"]
    assert (await staff_a.get(P, params={"mine": "true"})).json() == []  # staff login is not a member
    # Out of scope: 404, and absent from lists.
    for api in (member2, staff_b):
        _assert_error(await api.get(f"{P}/{pid}"), 404, "not_found")
        assert pid not in [p["id"] for p in (await api.get(P)).json()]
    _assert_error(await secretary.get(f"{P}/999999"), 404, "not_found")

    # Creating: staff-like only, and only for members they reach.
    _assert_error(await member1.post(P, json={"member_id": await world.member_id(1), "kind": "other", "name": "某人"}), 403, "forbidden")
    _assert_error(await secretary.post(P, json={"member_id": await world.member_id(7), "kind": "other", "name": "某人"}), 404, "not_found")
    _assert_error(await staff_b.post(P, json={"member_id": await world.member_id(1), "kind": "other", "name": "某人"}), 404)
    _assert_error(await secretary.post(P, json={"member_id": 99999999, "kind": "other", "name": "某人"}), 404)
    dup = await secretary.post(P, json={"member_id": await world.member_id(1), "kind": "resident", "name": "李阿婆"})
    _assert_error(dup, 409, "pairing_exists")
    other = await _create(staff_a, world, 6, kind="worker", name="赵师傅", category="困难职工", contact=None)
    assert other["contact"] is None and other["contact_masked"] is False
    _assert_error(await secretary.get(f"{P}/{other['id']}"), 404)  # branch 1 is not the secretary's

    # org_id filter: inside reach lists that subtree; outside or missing is 404.
    branch0, community_b = await _branch0(world), await _org_of(world, 7)
    community_b = int(await world.ctx.db.fetchval("SELECT parent_id FROM orgs WHERE id = $1", community_b))
    assert [p["id"] for p in (await staff_a.get(P, params={"org_id": branch0})).json()] == [pid]
    _assert_error(await secretary.get(P, params={"org_id": community_b}), 404)
    _assert_error(await secretary.get(P, params={"org_id": 999999}), 404)
    assert [p["id"] for p in (await admin.get(P, params={"member_id": await world.member_id(6)})).json()] == [other["id"]]

    # Edit, then end (end_date today), then list by status.
    edited = await secretary.patch(f"{P}/{pid}", json={"goals": "每两周电话问候", "interval_days": 14, "contact": "微信 li-apo"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["goals"] == "每两周电话问候" and edited.json()["interval_days"] == 14
    assert (await staff_a.get(f"{P}/{pid}")).json()["contact"] == "微***"
    _assert_error(await member1.patch(f"{P}/{pid}", json={"goals": "x"}), 403)  # the helper sees it but does not manage it
    _assert_error(await staff_b.patch(f"{P}/{pid}", json={"goals": "x"}), 404)
    ended = (await secretary.patch(f"{P}/{pid}", json={"status": "ended"})).json()
    assert ended["status"] == "ended" and ended["end_date"] == _today(world).isoformat() and ended["days_overdue"] == 0
    assert [p["id"] for p in (await secretary.get(P, params={"status": "ended"})).json()] == [pid]
    assert (await secretary.get(P, params={"status": "active"})).json() == []
    resumed = (await secretary.patch(f"{P}/{pid}", json={"status": "active"})).json()
    assert resumed["status"] == "active" and resumed["end_date"] is None
    # Now that it is active again a second active pairing with the same counterpart is refused.
    _assert_error(await secretary.post(P, json={"member_id": await world.member_id(1), "kind": "resident", "name": "李阿婆"}), 409)


async def test_visit_replay_is_idempotent_sequential_and_concurrent(world: World) -> None:
    secretary, staff_a, member1 = await world.secretary(), await world.staff_a(), await world.member(1)
    pid = (await _create(secretary, world, 1))["id"]
    helper = await world.member_id(1)
    body = {"client_uuid": new_uuid(), "visited_at": now_iso(-600), "mode": "phone", "content": "电话问候",
            "problems": "腿脚不便，买药困难", "help_given": "代购药品", "outcome": "药已送到，老人满意"}
    first = await member1.post(f"{P}/{pid}/visits", json=body)
    assert first.status_code == 201, first.text
    visit = first.json()
    assert visit["status"] == "pending" and visit["method"] == "self" and visit["member_id"] == helper
    assert visit["help_given"] == "代购药品" and visit["counterpart_name"] == "李阿婆" and visit["points"] == 0
    assert (visit["problems"], visit["outcome"]) == ("腿脚不便，买药困难", "药已送到，老人满意")
    assert tuple(await world.ctx.db.fetchrow(
        "SELECT problems, help_given, outcome FROM pairing_visits WHERE client_uuid = $1", body["client_uuid"]
    )) == ("腿脚不便，买药困难", "代购药品", "药已送到，老人满意")
    again = await member1.post(f"{P}/{pid}/visits", json={**body, "content": "改过的内容也不会写第二条"})
    assert again.status_code == 200 and again.json() == visit
    assert await world.count("SELECT COUNT(*) FROM pairing_visits WHERE client_uuid = $1", body["client_uuid"]) == 1

    # The page and the service worker send the same item at once.
    burst = {**body, "client_uuid": new_uuid()}
    responses = await asyncio.gather(*(member1.post(f"{P}/{pid}/visits", json=burst) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await world.count("SELECT COUNT(*) FROM pairing_visits WHERE client_uuid = $1", burst["client_uuid"]) == 1

    # Staff record on the helper's behalf; the key is still (helper, client_uuid).
    by_staff = await staff_a.post(f"{P}/{pid}/visits", json={**body, "client_uuid": new_uuid(), "mode": "home"})
    assert by_staff.status_code == 201 and by_staff.json()["method"] == "staff"
    assert by_staff.json()["recorded_by"] == world.ids["staff_a"]
    replay = await member1.post(f"{P}/{pid}/visits", json={**body, "client_uuid": by_staff.json()["client_uuid"]})
    assert replay.status_code == 200 and replay.json()["id"] == by_staff.json()["id"]

    # Another member's client_uuid, or the same uuid on another pairing: 409 with a Chinese detail.
    other = (await _create(secretary, world, 5, name="张大爷"))["id"]
    member5 = await world.member(5)
    _assert_error(await member5.post(f"{P}/{other}/visits", json=body), 409, "client_uuid_taken")
    second = (await _create(secretary, world, 1, name="陈奶奶"))["id"]
    _assert_error(await member1.post(f"{P}/{second}/visits", json=body), 409, "client_uuid_reused")
    # Someone else's pairing: 404, nothing stored.
    _assert_error(await member5.post(f"{P}/{pid}/visits", json={**body, "client_uuid": new_uuid()}), 404)
    detail = (await member1.get(f"{P}/{pid}")).json()
    assert detail["visit_count"] == 3 and len(detail["visits"]) == 3
    assert await world.count("SELECT COUNT(*) FROM pairing_visits") == 3


async def test_verify_awards_points_up_to_the_year_cap_and_reverses_on_rejection(world: World) -> None:
    secretary, member1 = await world.secretary(), await world.member(1)
    helper = await world.member_id(1)
    pid = (await _create(secretary, world, 1, start_date="2025-01-01"))["id"]
    visits = []
    for i in range(14):
        response = await _visit(member1, pid, visited_at=f"2025-03-{i + 1:02d}T10:00:00+08:00")
        assert response.status_code == 201, response.text
        visits.append(response.json()["id"])

    # Scope and roles: another station's staff and other members see nothing; the helper may not verify.
    _assert_error(await (await world.staff_b()).post(f"{P}/visits/{visits[0]}/verify", json={"approve": True}), 404)
    _assert_error(await (await world.member(2)).post(f"{P}/visits/{visits[0]}/verify", json={"approve": True}), 404)
    _assert_error(await member1.post(f"{P}/visits/{visits[0]}/verify", json={"approve": True}), 403, "forbidden")
    _assert_error(await secretary.post(f"{P}/visits/999999/verify", json={"approve": True}), 404)
    queue = (await secretary.get(f"{P}/visits", params={"status": "pending"})).json()
    assert len(queue) == 14 and {v["status"] for v in queue} == {"pending"}

    answers = []
    for visit_id in visits[:13]:
        response = await secretary.post(f"{P}/visits/{visit_id}/verify", json={"approve": True, "note": "属实"})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert [a["points_delta"] for a in answers] == [1.0] * 12 + [0.0]  # rule pairing_visit: +1, 12 a year
    assert "上限" in answers[12]["message"] and answers[12]["visit"]["status"] == "approved"
    capped = (await secretary.get(f"{P}/{pid}")).json()["visits"]
    assert {v["id"]: v["points"] for v in capped}[visits[12]] == 0

    async def earned() -> float:
        return float(await world.ctx.db.fetchval(
            "SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE member_id = $1 AND year = 2025", helper
        ))

    assert await earned() == 12
    _assert_error(await secretary.post(f"{P}/visits/{visits[0]}/verify", json={"approve": True}), 409, "already_approved")
    # Rejecting an approved visit appends a reversal; the approval entry stays.
    rejected = await secretary.post(f"{P}/visits/{visits[0]}/verify", json={"approve": False, "note": "核查不属实"})
    assert rejected.status_code == 200 and rejected.json()["points_delta"] == -1
    assert rejected.json()["visit"]["status"] == "rejected" and rejected.json()["visit"]["points"] == 0
    assert rejected.json()["visit"]["verify_note"] == "核查不属实"
    entries = await world.ctx.db.fetch(
        "SELECT id, delta, reverses_id FROM points_ledger WHERE source_type = 'visit' AND source_id = $1 ORDER BY id", visits[0]
    )
    assert [(float(e[1]), e[2]) for e in entries] == [(1.0, None), (-1.0, entries[0][0])]
    assert await earned() == 11
    _assert_error(await secretary.post(f"{P}/visits/{visits[0]}/verify", json={"approve": False}), 409, "already_rejected")
    # The cap has room again: the next approval earns; then it is full again.
    assert (await secretary.post(f"{P}/visits/{visits[13]}/verify", json={"approve": True})).json()["points_delta"] == 1
    assert (await secretary.post(f"{P}/visits/{visits[0]}/verify", json={"approve": True})).json()["points_delta"] == 0
    assert await earned() == 12
    mine = (await member1.get("/api/v1/me/points", params={"year": 2025})).json()
    assert mine["earned"] == 12
    # A replay of a verified visit returns it as it now stands.
    stored = (await secretary.get(f"{P}/{pid}")).json()["visits"]
    uuid13 = next(v["client_uuid"] for v in stored if v["id"] == visits[13])
    replay = await member1.post(f"{P}/{pid}/visits", json={
        "client_uuid": uuid13, "visited_at": "2025-03-14T10:00:00+08:00", "mode": "home", "content": "x",
    })
    assert replay.status_code == 200 and replay.json()["status"] == "approved" and replay.json()["points"] == 1


async def test_overdue_at_the_interval_boundary_per_branch(world: World) -> None:
    secretary, staff_a, staff_b = await world.secretary(), await world.staff_a(), await world.staff_b()
    today = _today(world)

    async def pairing(member_index: int, name: str, start: date, api: Api = secretary) -> int:
        return (await _create(api, world, member_index, name=name, start_date=start.isoformat(), interval_days=30))["id"]

    on_time = await pairing(1, "准时", today - timedelta(days=100))
    late = await pairing(1, "晚一天", today - timedelta(days=100))
    fresh = await pairing(2, "新结对", today - timedelta(days=30))
    never = await pairing(2, "从未走访", today - timedelta(days=31))
    rejected_only = await pairing(3, "走访被否", today - timedelta(days=40))
    pending = await pairing(3, "待核实", today - timedelta(days=100))
    ended = await pairing(4, "已结束", today - timedelta(days=100))
    other_branch = await pairing(6, "商户", today - timedelta(days=45), api=staff_a)
    member = {i: await world.member(i) for i in (1, 3, 4)}
    assert (await _visit(member[1], on_time, visited_at=_noon(world, today - timedelta(days=30)))).status_code == 201
    assert (await _visit(member[1], late, visited_at=_noon(world, today - timedelta(days=31)))).status_code == 201
    bad = (await _visit(member[3], rejected_only, visited_at=_noon(world, today - timedelta(days=1)))).json()
    assert (await secretary.post(f"{P}/visits/{bad['id']}/verify", json={"approve": False})).status_code == 200
    assert (await _visit(member[3], pending, visited_at=_noon(world, today - timedelta(days=2)))).status_code == 201
    assert (await _visit(member[4], ended, visited_at=_noon(world, today - timedelta(days=90)))).status_code == 201
    assert (await secretary.patch(f"{P}/{ended}", json={"status": "ended"})).status_code == 200

    report = await staff_a.get(f"{P}/overdue")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["as_of"] == today.isoformat()
    found = {item["pairing_id"]: (branch["org_id"], item) for branch in body["branches"] for item in branch["items"]}
    assert set(found) == {late, never, rejected_only, other_branch}
    assert body["total"] == 4
    assert found[late][1]["days_overdue"] == 1 and found[late][1]["last_visit_on"] == (today - timedelta(days=31)).isoformat()
    assert found[late][1]["due_on"] == (today - timedelta(days=1)).isoformat()
    assert found[never][1]["days_overdue"] == 1 and found[never][1]["last_visit_on"] is None
    assert found[rejected_only][1]["days_overdue"] == 10  # a rejected visit does not count
    assert found[other_branch][1]["days_overdue"] == 15
    # Grouped per branch: member 1–4 sit in a 党小组, which rolls up to 幸福里第一党支部.
    branch0, branch1 = await _branch0(world), await _org_of(world, 6)
    assert {found[p][0] for p in (late, never, rejected_only)} == {branch0} and found[other_branch][0] == branch1
    counts = {b["org_id"]: (b["org_name"], b["count"]) for b in body["branches"]}
    assert counts == {branch0: ("幸福里第一党支部", 3), branch1: ("幸福里商户联合党支部", 1)}
    # The same figure on the pairing itself.
    listed = {p["id"]: p["days_overdue"] for p in (await secretary.get(P)).json()}
    assert listed[on_time] == 0 and listed[late] == 1 and listed[fresh] == 0 and listed[pending] == 0

    # Scopes: the secretary's branch only; another station sees none; a member sees their own.
    assert {i["pairing_id"] for b in (await secretary.get(f"{P}/overdue")).json()["branches"] for i in b["items"]} == {
        late, never, rejected_only,
    }
    assert (await secretary.get(f"{P}/overdue", params={"org_id": branch0})).json()["total"] == 3
    _assert_error(await secretary.get(f"{P}/overdue", params={"org_id": branch1}), 404)
    assert (await staff_b.get(f"{P}/overdue")).json()["total"] == 0
    own = (await member[1].get(f"{P}/overdue")).json()
    assert [i["pairing_id"] for b in own["branches"] for i in b["items"]] == [late]


async def test_stats_per_branch(world: World) -> None:
    secretary, staff_a, admin, member1 = await world.secretary(), await world.staff_a(), await world.admin(), await world.member(1)
    year = _today(world).year - 1  # a whole past year: every date below is in the past whatever today is
    a = (await _create(secretary, world, 1, name="甲", start_date=f"{year - 1}-06-01"))["id"]
    await _create(secretary, world, 2, name="乙", start_date=f"{year}-06-01")  # never visited: overdue now
    c = (await _create(staff_a, world, 6, name="丙", start_date=f"{year - 1}-01-01"))["id"]
    assert (await staff_a.patch(f"{P}/{c}", json={"status": "ended", "end_date": f"{year - 1}-12-31"})).status_code == 200
    v1 = (await _visit(member1, a, visited_at=f"{year}-03-01T10:00:00+08:00")).json()
    v2 = (await _visit(member1, a, visited_at=f"{year}-03-03T10:00:00+08:00")).json()
    await _visit(member1, a, visited_at=f"{year}-03-05T10:00:00+08:00")  # stays pending
    await _visit(member1, a, visited_at=f"{year - 1}-07-01T10:00:00+08:00")  # the year before
    # Local year edges: 1 January 00:30 in Shanghai is still 31 December in UTC.
    await _visit(member1, a, visited_at=f"{year + 1}-01-01T00:30:00+08:00")
    await _visit(member1, a, visited_at=f"{year}-01-01T00:30:00+08:00")
    assert (await secretary.post(f"{P}/visits/{v1['id']}/verify", json={"approve": True})).status_code == 200
    assert (await secretary.post(f"{P}/visits/{v2['id']}/verify", json={"approve": False})).status_code == 200

    response = await admin.get(f"{P}/stats", params={"year": year})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == year
    rows = {r["org_id"]: r for r in body["branches"]}
    branch0, branch1 = await _branch0(world), await _org_of(world, 6)
    assert len(rows) == 4  # every branch of the street, with or without pairings
    fields = ("pairings", "active_pairings", "visits", "verified_visits", "pending_visits", "rejected_visits", "overdue")
    assert {k: rows[branch0][k] for k in fields} == {
        "pairings": 2, "active_pairings": 2, "visits": 4, "verified_visits": 1, "pending_visits": 2, "rejected_visits": 1,
        # 乙 (never visited); 甲 only once 30 days have passed since its last visit on 1 January (local)
        "overdue": 1 + (_today(world) > date(year + 1, 1, 1) + timedelta(days=30)),
    }
    assert rows[branch1]["pairings"] == 0 and rows[branch1]["active_pairings"] == 0  # ended the year before
    assert body["totals"]["org_id"] is None and body["totals"]["visits"] == 4 and body["totals"]["pairings"] == 2
    earlier = {r["org_id"]: r for r in (await admin.get(f"{P}/stats", params={"year": year - 1})).json()["branches"]}
    assert earlier[branch0]["visits"] == 1 and earlier[branch0]["pairings"] == 1 and earlier[branch1]["pairings"] == 1
    # The secretary sees only their branch; a member their own pairings.
    assert [r["org_id"] for r in (await secretary.get(f"{P}/stats")).json()["branches"]] == [branch0]
    own = (await member1.get(f"{P}/stats", params={"year": year})).json()
    assert own["totals"]["pairings"] == 1 and own["totals"]["visits"] == 4 and [r["org_id"] for r in own["branches"]] == [branch0]


async def test_bad_input_is_4xx_with_chinese_detail(world: World) -> None:
    secretary, member1 = await world.secretary(), await world.member(1)
    helper = await world.member_id(1)
    pid = (await _create(secretary, world, 1, start_date=(_today(world) - timedelta(days=10)).isoformat()))["id"]
    base = {"member_id": helper, "kind": "resident", "name": "某人"}
    for body, code in [
        ({**base, "kind": "alien"}, 400),
        ({**base, "name": ""}, 400),
        ({**base, "name": "   "}, 400),
        ({**base, "name": "a\u0000b"}, 400),
        ({**base, "category": "类" * 51}, 400),
        ({**base, "interval_days": 0}, 400),
        ({**base, "start_date": "2026-02-30"}, 400),
        ({**base, "start_date": "1900-01-01"}, 400),
        ({**base, "start_date": "2026-05-01", "end_date": "2026-04-30"}, 400),
        ({**base, "member_id": 2**40}, 400),
        ({**base, "extra": 1}, 400),
        ({"kind": "resident", "name": "某人"}, 400),
    ]:
        response = await secretary.post(P, json=body)
        assert response.status_code == code, (body, response.text)
        _assert_error(response, code)
    bad_json = await secretary.post(P, content=b"{not json", headers={"content-type": "application/json"})
    _assert_error(bad_json, 400)
    for patch in ({"status": "paused"}, {"end_date": "2000-01-01"}, {"goals": None}, {"member_id": 3}):
        _assert_error(await secretary.patch(f"{P}/{pid}", json=patch), 400)

    visit = {"client_uuid": new_uuid(), "visited_at": now_iso(-60), "mode": "home", "content": "走访"}
    for body, status, code in [
        ({**visit, "visited_at": "2026-05-01T10:00:00"}, 400, None),  # no offset
        ({**visit, "visited_at": now_iso(3600)}, 422, "visited_in_future"),
        ({**visit, "visited_at": _noon(world, _today(world) - timedelta(days=11))}, 422, "before_start"),
        ({**visit, "mode": "飞鸽传书"}, 400, None),
        ({**visit, "content": "  "}, 400, "empty_text"),
        ({**visit, "content": "x" * 2001}, 400, None),
        ({**visit, "client_uuid": "short"}, 400, None),
        ({**visit, "client_uuid": "has space in it"}, 400, None),
        ({k: v for k, v in visit.items() if k != "content"}, 400, "missing_field"),
    ]:
        _assert_error(await member1.post(f"{P}/{pid}/visits", json=body), status, code)
    # Ended: a visit after the end date is refused, one before it (a late outbox replay) is kept.
    ended = await secretary.patch(f"{P}/{pid}", json={"status": "ended", "end_date": (_today(world) - timedelta(days=2)).isoformat()})
    assert ended.status_code == 200, ended.text
    _assert_error(await member1.post(f"{P}/{pid}/visits", json={**visit, "client_uuid": new_uuid()}), 422, "after_end")
    kept = await member1.post(f"{P}/{pid}/visits", json={**visit, "visited_at": _noon(world, _today(world) - timedelta(days=3))})
    assert kept.status_code == 201, kept.text

    for url, params in [
        (P, {"org_id": "abc"}), (P, {"status": "open"}), (P, {"limit": 0}), (P, {"org_id": 2**40}), (P, {"mine": "perhaps"}),
        (f"{P}/stats", {"year": 1999}), (f"{P}/stats", {"year": "x"}), (f"{P}/overdue", {"org_id": -1}),
        (f"{P}/visits", {"status": "done"}),
    ]:
        _assert_error(await secretary.get(url, params=params), 400)
    for url in (f"{P}/{2**40}", f"{P}/{2**63 + 5}"):
        response = await secretary.get(url)
        assert response.status_code in (400, 404) and has_chinese(response.json()["detail"])
    _assert_error(await secretary.post(f"{P}/visits/{2**40}/verify", json={"approve": True}), 404)
    _assert_error(await secretary.post(f"{P}/visits/{kept.json()['id']}/verify", json={"approve": "yes"}), 400)
    _assert_error(await secretary.post(f"{P}/visits/{kept.json()['id']}/verify", json={"approve": True, "note": "x" * 201}), 400)
    _assert_error(await world.anon.get(P), 401)


async def test_openapi_lists_the_pairing_api(world: World) -> None:
    schema = (await world.client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/api/v1/pairings", "/api/v1/pairings/{pairing_id}", "/api/v1/pairings/{pairing_id}/visits",
                 "/api/v1/pairings/visits", "/api/v1/pairings/visits/{visit_id}/verify", "/api/v1/pairings/overdue",
                 "/api/v1/pairings/stats"):
        assert path in paths, path
    visit = paths["/api/v1/pairings/{pairing_id}/visits"]["post"]
    assert {"200", "201"} <= set(visit["responses"])
    assert schema["components"]["schemas"]["VisitIn"]["properties"]["mode"]["enum"] == ["home", "phone", "online", "station", "other"]
