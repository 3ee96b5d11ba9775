"""Volunteer hours (DESIGN §5): computation, the 8 h a local day rule, review, staff-completed
check-outs, the 10-working-day lock, corrections, points, scopes and bad input.

Fixed dates in Asia/Shanghai; the clock of the check-in and hours services is pinned with
``monkeypatch`` so the lock can be crossed without waiting two weeks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.hours import services as hours_services
from server.hours.services import compute_hours, locks_at
from tests.conftest import Api, World, has_chinese, new_uuid

SH = ZoneInfo("Asia/Shanghai")
URL = "/api/v1/volunteer-hours"


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


class Clock:
    """The 'now' of the check-in and hours services."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime.now(UTC)
        import server.checkins.services as checkins

        for module in (checkins, hours_services):
            monkeypatch.setattr(module, "utcnow", lambda: self.now)

    def set(self, when: datetime) -> None:
        self.now = when.astimezone(UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


async def volunteer(api: Api, world: World, starts: datetime, ends: datetime, **fields) -> int:
    body = {
        "type": "volunteer", "title": fields.pop("title", "志愿服务：社区巡查"), "station_id": world.ids["station_a"],
        "starts_at": starts.isoformat(), "ends_at": ends.isoformat(), **fields,
    }
    response = await api.post("/api/v1/activities", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def scan(api: Api, activity_id: int, member_id: int, when: datetime, kind: str = "in") -> dict:
    response = await api.post("/api/v1/checkins/staff", json={
        "member_id": member_id, "activity_id": activity_id, "client_uuid": new_uuid(), "scanned_at": when.isoformat(),
        "kind": kind,
    })
    assert response.status_code == 200, response.text
    return response.json()


async def attend(api: Api, activity_id: int, member_id: int, in_at: datetime, out_at: datetime) -> dict:
    assert (await scan(api, activity_id, member_id, in_at))["status"] == "accepted"
    out = await scan(api, activity_id, member_id, out_at, "out")
    assert out["status"] == "accepted", out
    return out


async def record_for(api: Api, activity_id: int, member_id: int) -> dict:
    response = await api.get(URL, params={"activity_id": activity_id, "member_id": member_id})
    assert response.status_code == 200, response.text
    [record] = response.json()
    return record


async def points_of(world: World, record_id: int) -> float:
    return float(await world.ctx.db.fetchval(
        "SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE source_type = 'hours' AND source_id = $1", record_id
    ))


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert has_chinese(body["detail"]), body
    if code is not None:
        assert body["code"] == code, body


# ---------------------------------------------------------------------- pure rules


def test_compute_hours_rounds_down_and_clips() -> None:
    start, end = sh(2026, 11, 16, 9), sh(2026, 11, 16, 12)
    assert compute_hours(start, end, start, end) == 3.0
    assert compute_hours(start, start + timedelta(hours=1, minutes=59, seconds=59), start, end) == 1.5
    assert compute_hours(start, start + timedelta(minutes=29, seconds=59), start, end) == 0.0  # under 0.5 h is 0
    assert compute_hours(start, start + timedelta(minutes=30), start, end) == 0.5
    assert compute_hours(start - timedelta(minutes=30), start + timedelta(hours=1), start, end) == 1.0  # early: from start
    assert compute_hours(start + timedelta(hours=2), end + timedelta(hours=2), start, end) == 1.0  # late: to the end
    assert compute_hours(start - timedelta(hours=1), start - timedelta(minutes=1), start, end) == 0.0  # all before
    assert compute_hours(end + timedelta(minutes=1), end + timedelta(hours=2), start, end) == 0.0  # all after
    assert compute_hours(start + timedelta(hours=1), start, start, end) == 0.0  # out before in


def test_lock_is_ten_working_days_after_the_local_end_date() -> None:
    friday_end = sh(2026, 11, 20, 18)
    assert locks_at(friday_end, SH) == sh(2026, 12, 5).astimezone(UTC)  # Mon 23 … Fri 4 Dec, locked Sat 00:00
    assert locks_at(sh(2026, 11, 21, 10), SH) == sh(2026, 12, 5).astimezone(UTC)  # ends on a Saturday
    assert locks_at(sh(2026, 11, 22, 23, 30), SH) == sh(2026, 12, 5).astimezone(UTC)  # Sunday night
    assert locks_at(sh(2026, 11, 23, 10), SH) == sh(2026, 12, 8).astimezone(UTC)  # Monday: Tue … Mon 7 Dec
    # Saturday 00:30 in Shanghai is Friday 16:30 UTC: the local date counts.
    saturday_early = sh(2026, 11, 21, 0, 30)
    assert saturday_early.astimezone(UTC).weekday() == 4
    assert locks_at(saturday_early, SH) == locks_at(sh(2026, 11, 21, 10), SH)


# ---------------------------------------------------------------------- check-out → record


async def test_checkout_records_clipped_rounded_hours_with_points(world: World, clock: Clock) -> None:
    clock.set(sh(2026, 11, 16, 13))
    staff = await world.staff_a()
    activity = await volunteer(staff, world, sh(2026, 11, 16, 9), sh(2026, 11, 16, 12))
    one, two, three = [await world.member_id(i) for i in (1, 2, 3)]
    out = await attend(staff, activity, one, sh(2026, 11, 16, 8, 40), sh(2026, 11, 16, 10, 59))  # 09:00–10:59
    assert out["points_awarded"] == 1.5
    await attend(staff, activity, two, sh(2026, 11, 16, 9), sh(2026, 11, 16, 9, 29))  # 29 min: 0
    await attend(staff, activity, three, sh(2026, 11, 16, 11), sh(2026, 11, 16, 12))  # window closes at the end

    record = await record_for(staff, activity, one)
    assert record["computed_hours"] == 1.5 and record["hours"] == 1.5 and record["auto_hours"] == 1.5
    assert record["status"] == "approved" and record["pending_hours"] == 0 and record["points"] == 1.5
    assert record["member_name"] and record["activity_title"] == "志愿服务：社区巡查"
    assert record["checked_in_at"].startswith("2026-11-16T00:40") and record["checked_out_at"].startswith("2026-11-16T02:59")
    assert record["checkout_method"] == "staff_manual" and record["local_date"] == "2026-11-16"
    assert record["locked"] is False and record["locks_at"].startswith("2026-11-30T16:00")  # Tue 1 Dec 00:00 local
    zero = await record_for(staff, activity, two)
    assert zero["computed_hours"] == 0 and zero["status"] == "approved" and zero["points"] == 0
    assert (await record_for(staff, activity, three))["hours"] == 1.0
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE source_type = 'hours' AND member_id = $1", two) == 0


async def test_eight_hours_a_local_day_across_activities_and_midnight(world: World, clock: Clock) -> None:
    clock.set(sh(2026, 11, 18, 3))
    staff = await world.staff_a()
    me = await world.member(1)
    member = await world.member_id(1)
    a = await volunteer(staff, world, sh(2026, 11, 16, 8), sh(2026, 11, 16, 14), title="上午")
    b = await volunteer(staff, world, sh(2026, 11, 16, 15), sh(2026, 11, 16, 19), title="下午")
    # 00:00–03:00 on the 17th in Shanghai is 16:00–19:00 UTC on the 16th: a new local day all the same.
    c = await volunteer(staff, world, sh(2026, 11, 17, 0), sh(2026, 11, 17, 3), title="凌晨")
    # Overnight 17th 20:00 → 18th 02:00: counts toward the day it started (the 17th).
    d = await volunteer(staff, world, sh(2026, 11, 17, 20), sh(2026, 11, 18, 2), title="通宵")
    await attend(staff, a, member, sh(2026, 11, 16, 8), sh(2026, 11, 16, 14))
    out_b = await attend(staff, b, member, sh(2026, 11, 16, 15), sh(2026, 11, 16, 19))
    assert out_b["points_awarded"] == 2
    await attend(staff, c, member, sh(2026, 11, 17, 0), sh(2026, 11, 17, 3))
    await attend(staff, d, member, sh(2026, 11, 17, 20), sh(2026, 11, 18, 2))

    rows = {r["activity_id"]: r for r in (await staff.get(URL, params={"member_id": member})).json()}
    assert (rows[a]["status"], rows[a]["hours"], rows[a]["local_date"]) == ("approved", 6, "2026-11-16")
    assert (rows[b]["status"], rows[b]["computed_hours"], rows[b]["auto_hours"], rows[b]["hours"], rows[b]["pending_hours"]) == (
        "pending", 4, 2, 2, 2)
    assert (rows[c]["status"], rows[c]["hours"], rows[c]["local_date"]) == ("approved", 3, "2026-11-17")
    assert (rows[d]["status"], rows[d]["computed_hours"], rows[d]["hours"], rows[d]["local_date"]) == (
        "pending", 6, 5, "2026-11-17")
    assert [rows[x]["points"] for x in (a, b, c, d)] == [6, 2, 3, 5]

    pending = (await staff.get(URL, params={"status": "pending"})).json()
    assert {r["activity_id"] for r in pending} == {b, d}
    only_16 = (await staff.get(URL, params={"from": "2026-11-16", "to": "2026-11-16", "member_id": member})).json()
    assert {r["activity_id"] for r in only_16} == {a, b}

    mine = (await me.get("/api/v1/me/volunteer-hours", params={"year": 2026})).json()
    assert (mine["year"], mine["total_hours"], mine["pending_hours"], mine["records"]) == (2026, 16, 3, 4)
    assert [r["activity_id"] for r in mine["items"]] == [d, c, b, a]
    assert (await me.get("/api/v1/me/volunteer-hours", params={"year": 2025})).json()["records"] == 0
    mine_listed = (await me.get(URL)).json()
    assert {r["activity_id"] for r in mine_listed} == {a, b, c, d}


async def test_review_decisions_move_points_append_only(world: World, clock: Clock) -> None:
    clock.set(sh(2026, 11, 16, 20))
    staff = await world.staff_a()
    member = await world.member_id(1)
    activity = await volunteer(staff, world, sh(2026, 11, 16, 8), sh(2026, 11, 16, 18))
    await attend(staff, activity, member, sh(2026, 11, 16, 8), sh(2026, 11, 16, 18))
    record = await record_for(staff, activity, member)
    rid = record["id"]
    assert (record["status"], record["computed_hours"], record["hours"], record["points"]) == ("pending", 10, 8, 8)

    too_much = await staff.post(f"{URL}/{rid}/decision", json={"approve": True, "hours": 10.5})
    assert_error(too_much, 400, "hours_exceed")
    not_half = await staff.post(f"{URL}/{rid}/decision", json={"approve": True, "hours": 1.25})
    assert_error(not_half, 400)
    reject_with_hours = await staff.post(f"{URL}/{rid}/decision", json={"approve": False, "hours": 2})
    assert_error(reject_with_hours, 400, "hours_with_reject")
    by_member = await (await world.member(1)).post(f"{URL}/{rid}/decision", json={"approve": True})
    assert_error(by_member, 403, "forbidden")
    by_other_station = await (await world.staff_b()).post(f"{URL}/{rid}/decision", json={"approve": True})
    assert_error(by_other_station, 404, "not_found")

    approved = await staff.post(f"{URL}/{rid}/decision", json={"approve": True, "hours": 9, "note": "核实后通过 9 小时"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["hours"], body["pending_hours"], body["note"]) == ("approved", 9, 0, "核实后通过 9 小时")
    assert body["decided_by"] == world.ids["staff_a"] and body["decided_by_name"] and body["points"] == 8  # day cap 8

    rejected = (await staff.post(f"{URL}/{rid}/decision", json={"approve": False, "note": "未实际参加"})).json()
    assert (rejected["status"], rejected["hours"], rejected["points"]) == ("rejected", 0, 0)
    entries = await world.ctx.db.fetch(
        "SELECT delta, reverses_id FROM points_ledger WHERE source_type = 'hours' AND source_id = $1 ORDER BY id", rid
    )
    assert [(float(d), r is not None) for d, r in entries] == [(8.0, False), (-8.0, True)]  # nothing deleted

    # the secretary of the member's branch may review too (station of another org subtree is fine)
    secretary = await world.secretary()
    again = (await secretary.post(f"{URL}/{rid}/decision", json={"approve": True, "hours": 5})).json()
    assert (again["status"], again["hours"], again["points"]) == ("approved", 5, 5)
    lowered = (await staff.post(f"{URL}/{rid}/decision", json={"approve": True, "hours": 3})).json()
    assert (lowered["hours"], lowered["points"]) == (3, 3)
    assert float(await world.ctx.db.fetchval(
        "SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE member_id = $1", member)) == 3
    me = (await (await world.member(1)).get("/api/v1/me/points", params={"year": 2026})).json()
    assert me["earned"] == 3


async def test_staff_complete_a_missing_check_out(world: World, clock: Clock) -> None:
    clock.set(sh(2026, 11, 16, 13))
    staff = await world.staff_a()
    activity = await volunteer(staff, world, sh(2026, 11, 16, 9), sh(2026, 11, 16, 12))
    one, two = await world.member_id(1), await world.member_id(2)
    await scan(staff, activity, one, sh(2026, 11, 16, 9, 10))
    body = {"activity_id": activity, "member_id": one, "checked_out_at": sh(2026, 11, 16, 12, 30).isoformat()}

    assert_error(await staff.post(f"{URL}/complete", json=body), 400, "beyond_schedule")
    early = {**body, "checked_out_at": sh(2026, 11, 16, 9, 5).isoformat()}
    assert_error(await staff.post(f"{URL}/complete", json=early), 400, "invalid_time")
    future = {**body, "checked_out_at": sh(2026, 11, 16, 11).isoformat()}
    clock.set(sh(2026, 11, 16, 10))
    assert_error(await staff.post(f"{URL}/complete", json=future), 400, "future_time")
    clock.set(sh(2026, 11, 16, 13))
    naive = {**body, "checked_out_at": "2026-11-16T11:40:00"}
    assert_error(await staff.post(f"{URL}/complete", json=naive), 400)
    assert_error(await staff.post(f"{URL}/complete", json={**body, "extra": 1}), 400, "unknown_field")
    assert_error(await (await world.staff_b()).post(f"{URL}/complete", json=body), 404, "not_found")
    assert_error(await (await world.member(3)).post(f"{URL}/complete", json=body), 403, "forbidden")
    no_in = {**body, "member_id": two, "checked_out_at": sh(2026, 11, 16, 11).isoformat()}
    assert_error(await staff.post(f"{URL}/complete", json=no_in), 409, "no_checkin")

    done = await staff.post(f"{URL}/complete", json={**body, "checked_out_at": sh(2026, 11, 16, 11, 40).isoformat()})
    assert done.status_code == 201, done.text
    record = done.json()
    assert (record["computed_hours"], record["hours"], record["status"]) == (2.5, 2.5, "approved")
    assert record["checkout_method"] == "staff_manual" and record["points"] == 2.5
    assert record["checked_out_at"].startswith("2026-11-16T03:40")
    assert await world.count(
        "SELECT COUNT(*) FROM checkins WHERE member_id = $1 AND kind = 'out' AND staff_user_id = $2", one,
        world.ids["staff_a"]) == 1
    again = await staff.post(f"{URL}/complete", json={**body, "checked_out_at": sh(2026, 11, 16, 11, 50).isoformat()})
    assert_error(again, 409, "already_checked_out")
    # a self check-out after staff completed it is a duplicate, no second record
    assert (await scan(staff, activity, one, sh(2026, 11, 16, 11, 55), "out"))["status"] == "duplicate"
    assert await world.count("SELECT COUNT(*) FROM volunteer_hours WHERE member_id = $1", one) == 1

    meeting = (await staff.post("/api/v1/activities", json={
        "type": "party_lecture", "title": "党课", "station_id": world.ids["station_a"],
        "starts_at": sh(2026, 11, 16, 9).isoformat(), "ends_at": sh(2026, 11, 16, 12).isoformat(),
    })).json()["id"]
    assert_error(await staff.post(f"{URL}/complete", json={**body, "activity_id": meeting}), 409, "no_hours")
    assert_error(await staff.post(f"{URL}/complete", json={**body, "activity_id": 999999}), 404, "not_found")


async def test_hours_follow_when_the_check_in_is_accepted_after_the_check_out(world: World, clock: Clock) -> None:
    staff = await world.staff_a()
    activity = await volunteer(staff, world, sh(2026, 11, 16, 9), sh(2026, 11, 16, 12))
    member = await world.member_id(4)
    clock.set(sh(2026, 11, 20, 9))  # synced > 72 h later: both go to review
    first = await scan(staff, activity, member, sh(2026, 11, 16, 9))
    out = await scan(staff, activity, member, sh(2026, 11, 16, 11, 30), "out")
    assert first["status"] == out["status"] == "pending_review"
    assert (await staff.post(f"/api/v1/checkins/{out['checkin_id']}/decision", json={"accept": True})).status_code == 200
    assert await world.count("SELECT COUNT(*) FROM volunteer_hours WHERE member_id = $1", member) == 0
    accepted = await staff.post(f"/api/v1/checkins/{first['checkin_id']}/decision", json={"accept": True})
    assert accepted.status_code == 200 and accepted.json()["points_awarded"] == 2.5
    record = await record_for(staff, activity, member)
    assert (record["hours"], record["status"]) == (2.5, "approved")


# ---------------------------------------------------------------------- lock and corrections


async def test_lock_after_ten_working_days_then_corrections(world: World, clock: Clock) -> None:
    clock.set(sh(2026, 11, 20, 12, 30))  # a Friday
    staff, secretary, admin = await world.staff_a(), await world.secretary(), await world.admin()
    me = await world.member(1)
    member = await world.member_id(1)
    activity = await volunteer(staff, world, sh(2026, 11, 20, 9), sh(2026, 11, 20, 12))
    await attend(staff, activity, member, sh(2026, 11, 20, 9, 10), sh(2026, 11, 20, 11, 50))  # 2.5 h
    rid = (await record_for(staff, activity, member))["id"]

    clock.set(sh(2026, 12, 4, 23, 59))  # the tenth working day, still open
    early = await me.post(f"{URL}/{rid}/corrections", json={"hours": 3, "reason": "签退时忘记扫码"})
    assert_error(early, 409, "not_locked")
    ok = await staff.post(f"{URL}/{rid}/decision", json={"approve": True, "hours": 2})
    assert ok.status_code == 200 and ok.json()["locked"] is False and ok.json()["hours"] == 2

    clock.set(sh(2026, 12, 5, 0, 0))  # Saturday 00:00 local: locked
    record = (await staff.get(f"{URL}/{rid}")).json()
    assert record["locked"] is True and record["corrections"] == []
    assert_error(await staff.post(f"{URL}/{rid}/decision", json={"approve": True}), 409, "locked")
    assert_error(await staff.post(f"{URL}/{rid}/decision", json={"approve": False}), 409, "locked")
    late = {"activity_id": activity, "member_id": await world.member_id(2), "checked_out_at": sh(2026, 11, 20, 11).isoformat()}
    assert_error(await staff.post(f"{URL}/complete", json=late), 409, "locked")

    assert_error(await me.post(f"{URL}/{rid}/corrections", json={"hours": 3.5, "reason": "多算半小时"}), 400, "hours_exceed")
    assert_error(await me.post(f"{URL}/{rid}/corrections", json={"hours": 2, "reason": "没有变化"}), 400, "no_change")
    assert_error(await me.post(f"{URL}/{rid}/corrections", json={"hours": 3}), 400, "missing_field")
    assert_error(await me.post(f"{URL}/{rid}/corrections", json={"hours": 2.7, "reason": "不是半小时"}), 400)
    asked = await me.post(f"{URL}/{rid}/corrections", json={"hours": 3, "reason": "签退时忘记扫码，实际服务到结束"})
    assert asked.status_code == 201, asked.text
    correction = asked.json()
    assert (correction["status"], correction["old_hours"], correction["new_hours"]) == ("pending", 2, 3)
    assert correction["requested_by"] == (await me.get("/api/v1/me")).json()["id"]
    assert_error(await staff.post(f"{URL}/{rid}/corrections", json={"hours": 2.5, "reason": "第二个申请"}), 409,
                 "correction_pending")
    assert (await staff.get(f"{URL}/{rid}")).json()["correction_pending"] is True

    cid = correction["id"]
    assert_error(await staff.post(f"{URL}/corrections/{cid}/decision", json={"approve": True}), 403, "forbidden")
    assert_error(await me.post(f"{URL}/corrections/{cid}/decision", json={"approve": True}), 403, "forbidden")
    assert_error(await (await world.staff_b()).post(f"{URL}/corrections/{cid}/decision", json={"approve": True}), 404)
    assert_error(await secretary.post(f"{URL}/corrections/999999/decision", json={"approve": True}), 404, "not_found")
    queue = (await secretary.get(f"{URL}/corrections", params={"status": "pending"})).json()
    assert [c["id"] for c in queue] == [cid]

    decided = await secretary.post(f"{URL}/corrections/{cid}/decision", json={"approve": True, "note": "经核实"})
    assert decided.status_code == 200, decided.text
    d = decided.json()
    assert (d["status"], d["old_hours"], d["new_hours"], d["decided_by"], d["note"]) == (
        "approved", 2, 3, world.ids["secretary"], "经核实")
    assert d["decided_at"] and d["requested_at"]
    assert_error(await admin.post(f"{URL}/corrections/{cid}/decision", json={"approve": False}), 409, "already_decided")
    record = (await me.get(f"{URL}/{rid}")).json()
    assert (record["hours"], record["status"], record["points"], record["correction_pending"]) == (3, "approved", 3, False)
    assert [(c["old_hours"], c["new_hours"], c["status"]) for c in record["corrections"]] == [(2, 3, "approved")]

    # a reviewer's own request needs someone else; a rejected request changes nothing
    own = (await secretary.post(f"{URL}/{rid}/corrections", json={"hours": 1, "reason": "重复计算"})).json()
    assert_error(await secretary.post(f"{URL}/corrections/{own['id']}/decision", json={"approve": True}), 403)
    no = (await admin.post(f"{URL}/corrections/{own['id']}/decision", json={"approve": False, "note": "不予更正"})).json()
    assert no["status"] == "rejected"
    assert (await me.get(f"{URL}/{rid}")).json()["hours"] == 3
    # to zero: the record counts nothing and its points are reversed (append-only)
    zero = (await staff.post(f"{URL}/{rid}/corrections", json={"hours": 0, "reason": "未实际参加服务"})).json()
    assert (await admin.post(f"{URL}/corrections/{zero['id']}/decision", json={"approve": True})).status_code == 200
    record = (await me.get(f"{URL}/{rid}")).json()
    assert (record["hours"], record["status"], record["points"]) == (0, "rejected", 0)
    assert await world.count(
        "SELECT COUNT(*) FROM points_ledger WHERE source_type = 'hours' AND source_id = $1 AND reverses_id IS NOT NULL", rid
    ) >= 1
    assert len(record["corrections"]) == 3


# ---------------------------------------------------------------------- scopes and input


async def test_scopes_are_404_and_bad_input_is_chinese_4xx(world: World, clock: Clock) -> None:
    clock.set(sh(2026, 11, 16, 13))
    staff = await world.staff_a()
    activity = await volunteer(staff, world, sh(2026, 11, 16, 9), sh(2026, 11, 16, 12))
    one, six = await world.member_id(1), await world.member_id(6)  # 6 is in another branch of the community
    await attend(staff, activity, one, sh(2026, 11, 16, 9), sh(2026, 11, 16, 11))
    await attend(staff, activity, six, sh(2026, 11, 16, 9), sh(2026, 11, 16, 10))
    rid_one = (await record_for(staff, activity, one))["id"]
    rid_six = (await record_for(staff, activity, six))["id"]

    staff_b, other_member, secretary, admin = await world.staff_b(), await world.member(2), await world.secretary(), await world.admin()
    assert (await staff_b.get(URL)).json() == []
    assert (await other_member.get(URL)).json() == []
    for api, rid in ((staff_b, rid_one), (other_member, rid_one), (secretary, rid_six)):
        assert_error(await api.get(f"{URL}/{rid}"), 404, "not_found")
        assert_error(await api.post(f"{URL}/{rid}/decision", json={"approve": True}), 404, "not_found")
        assert_error(await api.post(f"{URL}/{rid}/corrections", json={"hours": 1, "reason": "无权申请"}), 404, "not_found")
    assert {r["id"] for r in (await secretary.get(URL)).json()} == {rid_one}
    assert {r["id"] for r in (await admin.get(URL)).json()} == {rid_one, rid_six}
    assert {r["id"] for r in (await (await world.member(6)).get(URL)).json()} == {rid_six}
    assert_error(await staff.get(f"{URL}/999999"), 404, "not_found")
    assert (await admin.get(f"{URL}/corrections")).json() == []

    for params in ({"status": "bogus"}, {"from": "2026-13-01"}, {"member_id": 0}, {"limit": 0},
                   {"from": "2026-11-17", "to": "2026-11-16"}):
        assert_error(await staff.get(URL, params=params), 400)
    assert_error(await staff.get(f"{URL}/corrections", params={"status": "open"}), 400)
    for body in ({"approve": "yes"}, {}, {"approve": True, "hours": -1}, {"approve": True, "hours": 0},
                 {"approve": True, "note": "很" * 201}, {"approve": True, "surprise": 1}):
        assert_error(await staff.post(f"{URL}/{rid_one}/decision", json=body), 400)
    assert_error(await staff.post(f"{URL}/{rid_one}/decision", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert_error(await (await world.member(1)).get("/api/v1/me/volunteer-hours", params={"year": 1999}), 400)
    assert_error(await staff.get("/api/v1/me/volunteer-hours"), 403, "forbidden")
    assert (await world.anon.get(URL)).status_code == 401


async def test_openapi_documents_the_hours_api(world: World) -> None:
    schema = (await world.anon.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path, method in (
        ("/api/v1/volunteer-hours", "get"), ("/api/v1/volunteer-hours/{hours_id}", "get"),
        ("/api/v1/volunteer-hours/{hours_id}/decision", "post"), ("/api/v1/volunteer-hours/complete", "post"),
        ("/api/v1/volunteer-hours/{hours_id}/corrections", "post"), ("/api/v1/volunteer-hours/corrections", "get"),
        ("/api/v1/volunteer-hours/corrections/{correction_id}/decision", "post"), ("/api/v1/me/volunteer-hours", "get"),
    ):
        assert method in paths[path], path
    params = {p["name"] for p in paths["/api/v1/volunteer-hours"]["get"]["parameters"]}
    assert {"status", "activity_id", "member_id", "from", "to"} <= params
    components = schema["components"]["schemas"]
    hours_out = next(v for k, v in components.items() if k.endswith("HoursOut") and "Detail" not in k and "My" not in k)
    assert {"member_name", "activity_title", "checked_in_at", "checked_out_at", "hours", "status", "locked"} <= set(hours_out["properties"])


async def test_a_volunteer_rule_that_needs_approval_sends_every_hour_to_review(world: World, clock: Clock) -> None:
    clock.set(sh(2026, 11, 16, 20))
    admin, staff = await world.admin(), await world.staff_a()
    rule = next(r for r in (await admin.get("/api/v1/points/rules")).json() if r["code"] == "volunteer_hour")
    assert (await admin.patch(f"/api/v1/points/rules/{rule['id']}", json={"needs_approval": True})).status_code == 200
    member = await world.member_id(1)
    activity = await volunteer(staff, world, sh(2026, 11, 16, 9), sh(2026, 11, 16, 12))
    out = await attend(staff, activity, member, sh(2026, 11, 16, 9), sh(2026, 11, 16, 11, 40))
    assert out["points_awarded"] == 0
    record = await record_for(staff, activity, member)
    assert (record["status"], record["computed_hours"], record["hours"], record["points"]) == ("pending", 2.5, 0, 0)
    approved = (await staff.post(f"{URL}/{record['id']}/decision", json={"approve": True})).json()
    assert (approved["status"], approved["hours"], approved["points"]) == ("approved", 2.5, 2.5)
    assert (await (await world.member(1)).get("/api/v1/me/points", params={"year": 2026})).json()["earned"] == 2.5
