"""请假: a member asks leave for a required activity; staff or a secretary decides; closing applies the
absence rule only to unexcused absentees (and twice is once); leave approved after the close gives the
points back with a reversal entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import World, new_uuid, now_iso


async def _required_activity(world: World, *, start: timedelta = timedelta(minutes=-30), hours: float = 2) -> dict[str, Any]:
    """A required 主题党日 of 幸福里第一党支部 at station A (the demo member 1 belongs to it)."""
    staff = await world.staff_a()
    branch = next(o["id"] for o in (await (await world.admin()).get("/api/v1/orgs")).json() if o["name"] == "幸福里第一党支部")
    starts = datetime.now(UTC) + start
    answer = await staff.post("/api/v1/activities", json={
        "type": "theme_day", "title": "主题党日：请假测试", "station_id": world.ids["station_a"], "org_id": branch,
        "required": True, "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=hours)).isoformat(),
    })
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def _absence_total(world: World, member_id: int, activity_id: int) -> float:
    rows = await world.ctx.db.fetch(
        "SELECT delta FROM points_ledger WHERE member_id = $1 AND source_type = 'absence' AND source_id = $2",
        member_id, activity_id,
    )
    return sum(float(r[0]) for r in rows)


async def test_leave_excuses_from_the_absence_rule_and_closing_twice_is_once(world: World) -> None:
    activity = await _required_activity(world)
    member = await world.member(1)
    excused_id = await world.member_id(1)
    absent_id = await world.member_id(2)

    asked = await member.post(f"/api/v1/activities/{activity['id']}/leave-requests", json={"reason": "住院治疗"})
    assert asked.status_code == 201, asked.text
    leave = asked.json()
    assert leave["status"] == "pending" and leave["member_name"] and leave["activity_title"] == "主题党日：请假测试"
    again = await member.post(f"/api/v1/activities/{activity['id']}/leave-requests", json={"reason": "再次"})
    assert again.status_code == 409 and again.json()["code"] == "leave_exists" and "等待审批" in again.json()["detail"]
    assert [item["id"] for item in (await member.get("/api/v1/leave-requests")).json()] == [leave["id"]]

    other_station = await world.staff_b()
    hidden = await other_station.post(f"/api/v1/leave-requests/{leave['id']}/decision", json={"approve": True})
    assert hidden.status_code == 404
    assert (await other_station.get("/api/v1/leave-requests")).json() == []
    own = await member.post(f"/api/v1/leave-requests/{leave['id']}/decision", json={"approve": True})
    assert own.status_code == 403 and own.json()["code"] == "own_request"  # they see it, but cannot approve it

    staff = await world.staff_a()
    pending = (await staff.get("/api/v1/leave-requests", params={"status": "pending"})).json()
    assert [p["id"] for p in pending] == [leave["id"]]
    approved = await staff.post(f"/api/v1/leave-requests/{leave['id']}/decision", json={"approve": True, "note": "同意"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    twice = await staff.post(f"/api/v1/leave-requests/{leave['id']}/decision", json={"approve": False})
    assert twice.status_code == 409 and twice.json()["code"] == "already_decided"

    attendance = (await staff.get(f"/api/v1/activities/{activity['id']}/attendance")).json()
    states = {i["member_id"]: i["state"] for i in attendance["items"]}
    assert states[excused_id] == "excused" and states[absent_id] == "absent"
    assert attendance["excused"] == 1 and attendance["absent"] == attendance["expected"] - 1

    closed = (await staff.post(f"/api/v1/activities/{activity['id']}/close")).json()
    assert closed["absentees_penalised"] == attendance["expected"] - 1
    assert await _absence_total(world, excused_id, activity["id"]) == 0
    assert await _absence_total(world, absent_id, activity["id"]) == -2
    reclosed = (await staff.post(f"/api/v1/activities/{activity['id']}/close")).json()
    assert reclosed["already_closed"] and reclosed["absentees_penalised"] == 0
    assert await _absence_total(world, absent_id, activity["id"]) == -2


async def test_leave_approved_after_the_close_restores_the_points_with_a_reversal(world: World) -> None:
    activity = await _required_activity(world, start=timedelta(hours=-3), hours=2)  # ended an hour ago
    staff = await world.staff_a()
    await staff.post(f"/api/v1/activities/{activity['id']}/close")
    member_id = await world.member_id(3)
    member = await world.member(3)
    before = (await member.get("/api/v1/me/points")).json()["earned"]
    assert await _absence_total(world, member_id, activity["id"]) == -2

    leave = (await member.post(f"/api/v1/activities/{activity['id']}/leave-requests", json={"reason": "出差在外地"})).json()
    secretary = await world.secretary()
    decided = await secretary.post(f"/api/v1/leave-requests/{leave['id']}/decision", json={"approve": True})
    assert decided.status_code == 200 and decided.json()["points_restored"] == 2
    assert (await member.get("/api/v1/me/points")).json()["earned"] == before + 2
    rows = await world.ctx.db.fetch(
        "SELECT delta, reverses_id FROM points_ledger WHERE member_id = $1 AND source_type = 'absence' AND source_id = $2"
        " ORDER BY id", member_id, activity["id"],
    )
    assert [float(r[0]) for r in rows] == [-2.0, 2.0] and rows[1][1] is not None  # appended, never deleted
    kept_rule = await world.ctx.db.fetch(
        "SELECT rule_id, rule_version FROM points_ledger WHERE member_id = $1 AND source_type = 'absence' AND source_id = $2",
        member_id, activity["id"],
    )
    assert kept_rule[0] == kept_rule[1] and kept_rule[0][0] is not None  # the reversal names the rule it undoes
    # Other members' absence entries for the same activity are untouched.
    others = await world.ctx.db.fetchval(
        "SELECT count(*) FROM points_ledger WHERE source_type = 'absence' AND source_id = $1 AND reverses_id IS NOT NULL",
        activity["id"],
    )
    assert others == 1


async def test_nobody_approves_their_own_leave(world: World) -> None:
    activity = await _required_activity(world)
    admin = await world.admin()
    granted = await admin.post("/api/v1/grants", json={"phone": "13900000001", "role": "staff", "station_id": world.ids["station_a"]})
    assert granted.status_code == 201, granted.text
    member_and_staff = await world.member(1)  # a member who is also staff of the activity's station
    asked = await member_and_staff.post(f"/api/v1/activities/{activity['id']}/leave-requests", json={"reason": "外出"})
    assert asked.status_code == 201
    own = await member_and_staff.post(f"/api/v1/leave-requests/{asked.json()['id']}/decision", json={"approve": True})
    assert own.status_code == 403 and own.json()["code"] == "own_request"
    staff = await world.staff_a()
    assert (await staff.post(f"/api/v1/leave-requests/{asked.json()['id']}/decision", json={"approve": True})).status_code == 200


async def test_leave_rules_and_bad_input(world: World) -> None:
    member = await world.member(1)
    member_id = await world.member_id(1)
    staff = await world.staff_a()
    # Not required: no leave needed.
    starts = datetime.now(UTC)
    optional = (await staff.post("/api/v1/activities", json={
        "type": "volunteer", "title": "志愿服务（自愿参加）", "station_id": world.ids["station_a"],
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat(),
    })).json()
    answer = await member.post(f"/api/v1/activities/{optional['id']}/leave-requests", json={"reason": "有事"})
    assert answer.status_code == 400 and answer.json()["code"] == "not_required" and "无需请假" in answer.json()["detail"]

    # More than 24 h after the end: too late.
    old = await _required_activity(world, start=timedelta(hours=-30), hours=2)
    late = await member.post(f"/api/v1/activities/{old['id']}/leave-requests", json={"reason": "忘了"})
    assert late.status_code == 400 and late.json()["code"] == "too_late"

    # Already checked in: no leave.
    present = await _required_activity(world)
    token = (await staff.get(f"/api/v1/activities/{present['id']}/qr")).json()["token"]
    checked = await member.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": token, "scanned_at": now_iso()})
    assert checked.status_code == 200, checked.text
    answer = await member.post(f"/api/v1/activities/{present['id']}/leave-requests", json={"reason": "临时有事"})
    assert answer.status_code == 409 and answer.json()["code"] == "already_present"

    # Bad input: empty reason, unknown fields, unknown activity.
    target = await _required_activity(world)
    for body in ({"reason": ""}, {"reason": "x", "extra": 1}, {}):
        bad = await member.post(f"/api/v1/activities/{target['id']}/leave-requests", json=body)
        assert bad.status_code == 400 and bad.json()["detail"], body
    assert (await member.post("/api/v1/activities/999999/leave-requests", json={"reason": "x"})).status_code == 404

    # Staff asks on behalf of an elderly member; the member may not withdraw someone else's request.
    on_behalf = await staff.post(f"/api/v1/activities/{target['id']}/leave-requests", json={"reason": "行动不便", "member_id": member_id})
    assert on_behalf.status_code == 201 and on_behalf.json()["member_id"] == member_id
    stranger = await world.member(2)
    assert (await stranger.post(f"/api/v1/leave-requests/{on_behalf.json()['id']}/withdraw")).status_code == 404
    withdrawn = await member.post(f"/api/v1/leave-requests/{on_behalf.json()['id']}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    # Asked again after withdrawing: pending again, same request.
    again = await member.post(f"/api/v1/activities/{target['id']}/leave-requests", json={"reason": "还是去不了"})
    assert again.status_code == 201 and again.json()["id"] == on_behalf.json()["id"] and again.json()["status"] == "pending"
