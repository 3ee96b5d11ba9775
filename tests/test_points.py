"""Points core (DESIGN §6): caps at period edges in Asia/Shanghai, append-only ledger with reversals,
tally and ranks, rules with versions, the absence rule on close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.points import services as points
from tests.conftest import World, new_uuid, now_iso

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _award(world: World, member_id: int, code: str, when: datetime, units: float = 1) -> float:
    ctx = world.ctx
    rule = await points.rule_by_code(ctx, code)
    assert rule is not None
    org_path = await ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member_id)
    async with ctx.db.transaction():
        return await points.award(
            ctx, member_id=member_id, org_path=org_path, rule=rule, units=units, occurred_at=when,
            source_type="checkin", source_id=None,
        )


async def test_year_cap_stops_at_12_and_resets_at_local_new_year(world: World) -> None:
    member = world.ids["first_member"]
    start = datetime(2025, 3, 1, 10, tzinfo=SHANGHAI)
    awarded = [await _award(world, member, "attend_theme_day", start + timedelta(days=i)) for i in range(13)]
    assert awarded == [1.0] * 12 + [0.0]
    # 2025-12-31 23:30 in Shanghai is still 2025 (15:30 UTC): capped.
    assert await _award(world, member, "attend_theme_day", datetime(2025, 12, 31, 23, 30, tzinfo=SHANGHAI)) == 0
    # 2026-01-01 00:30 in Shanghai is 2025-12-31 16:30 UTC, but the local year is 2026: a new cap.
    new_year = datetime(2026, 1, 1, 0, 30, tzinfo=SHANGHAI)
    assert new_year.astimezone(UTC).year == 2025
    assert await _award(world, member, "attend_theme_day", new_year) == 1
    rows = await world.ctx.db.fetch(
        "SELECT year, SUM(delta) FROM points_ledger WHERE member_id = $1 GROUP BY year ORDER BY year", member
    )
    assert [(r[0], float(r[1])) for r in rows] == [(2025, 12.0), (2026, 1.0)]


async def test_day_cap_for_volunteer_hours_is_partial_and_per_local_day(world: World) -> None:
    member = world.ids["first_member"]
    morning = datetime(2026, 5, 4, 8, tzinfo=SHANGHAI)
    assert await _award(world, member, "volunteer_hour", morning, units=5) == 5
    assert await _award(world, member, "volunteer_hour", morning + timedelta(hours=6), units=5) == 3  # up to 8
    assert await _award(world, member, "volunteer_hour", morning + timedelta(hours=10), units=1) == 0
    # 00:10 next local day (16:10 UTC the same UTC day) is a new day
    next_day = datetime(2026, 5, 5, 0, 10, tzinfo=SHANGHAI)
    assert await _award(world, member, "volunteer_hour", next_day, units=2) == 2


async def test_month_cap_boundary(world: World) -> None:
    admin = await world.admin()
    created = await admin.post("/api/v1/points/rules", json={
        "code": "monthly_test", "name": "每月上限测试", "category": "reward", "trigger": "other", "points": 2,
        "cap_month": 3,
    })
    assert created.status_code == 201, created.text
    member = world.ids["first_member"]
    end_of_month = datetime(2026, 6, 30, 23, 59, tzinfo=SHANGHAI)
    assert await _award(world, member, "monthly_test", end_of_month - timedelta(days=1)) == 2
    assert await _award(world, member, "monthly_test", end_of_month) == 1
    assert await _award(world, member, "monthly_test", end_of_month + timedelta(minutes=2)) == 2  # July, local


async def test_adjustments_are_appended_with_who_and_why(world: World) -> None:
    secretary = await world.secretary()
    member_id = world.ids["first_member"]
    reward = await secretary.post("/api/v1/points/adjustments", json={"member_id": member_id, "delta": 5, "reason": "抗疫志愿表现突出"})
    assert reward.status_code == 201, reward.text
    assert reward.json()["rule_code"] == "manual_reward"
    dues = await secretary.post("/api/v1/points/adjustments", json={
        "member_id": member_id, "delta": -2, "reason": "十月党费未按时交纳", "rule_code": "dues_overdue",
    })
    assert dues.status_code == 201
    row = await world.ctx.db.fetchrow(
        "SELECT created_by, reason, delta FROM points_ledger WHERE id = $1", dues.json()["id"]
    )
    assert row[0] == world.ids["secretary"] and row[1] == "十月党费未按时交纳" and float(row[2]) == -2
    mine = (await (await world.member(1)).get("/api/v1/me/points")).json()
    assert mine["earned"] == 3 and mine["total"] == 63
    assert [e["reason"] for e in mine["entries"]][:2] == ["十月党费未按时交纳", "抗疫志愿表现突出"]
    zero = await secretary.post("/api/v1/points/adjustments", json={"member_id": member_id, "delta": 0, "reason": "无效调整"})
    assert zero.status_code == 400 and zero.json()["code"] == "zero_delta"
    no_reason = await secretary.post("/api/v1/points/adjustments", json={"member_id": member_id, "delta": 1, "reason": ""})
    assert no_reason.status_code == 400


async def test_reversal_restores_totals_without_editing(world: World) -> None:
    ctx = world.ctx
    member = world.ids["first_member"]
    rule = await points.rule_by_code(ctx, "attend_party_lecture")
    org_path = await ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member)
    async with ctx.db.transaction():
        await points.award(ctx, member_id=member, org_path=org_path, rule=rule, units=1, occurred_at=datetime.now(UTC),
                           source_type="checkin", source_id=4242)
    async with ctx.db.transaction():
        assert await points.reverse_source(ctx, "checkin", 4242, created_by=None, reason="冲销") == -1
    async with ctx.db.transaction():
        assert await points.reverse_source(ctx, "checkin", 4242, created_by=None, reason="冲销") == 0  # once only
    entries = await ctx.db.fetch("SELECT delta, reverses_id FROM points_ledger WHERE member_id = $1 ORDER BY id", member)
    assert [float(e[0]) for e in entries] == [1.0, -1.0] and entries[1][1] is not None
    tally = await ctx.db.fetch("SELECT earned FROM points_tally WHERE member_id = $1", member)
    assert tally and all(float(t[0]) == 0 for t in tally)


async def test_leaderboard_ranks_ties_and_subtree(world: World) -> None:
    admin = await world.admin()
    ids = [await world.member_id(i) for i in (1, 2, 3, 5)]
    for member_id, delta in zip(ids, (5, 5, 3, 8)):
        response = await admin.post("/api/v1/points/adjustments", json={"member_id": member_id, "delta": delta, "reason": "排名测试"})
        assert response.status_code == 201
    board = (await admin.get("/api/v1/points/leaderboard", params={"org_id": world.ids["street"], "limit": 5})).json()
    ranks = [(r["member_id"], r["rank"], r["earned"]) for r in board["rows"]]
    assert ranks[:4] == [(ids[3], 1, 8), (ids[0], 2, 5), (ids[1], 2, 5), (ids[2], 4, 3)]
    assert ranks[4][1] == 5 and ranks[4][2] == 0  # members with no points yet still rank, after everyone else
    assert board["rows"][0]["total"] == 68 and board["rows"][0]["star"] == 1
    member = await world.member(2)
    mine = (await member.get("/api/v1/me/points")).json()
    # ranked in the branch (幸福里第一党支部: the 党小组 members 1–4, and 5, 9, …): member 5 leads with 8
    assert mine["rank"] == 2 and mine["rank_org_name"] == "幸福里第一党支部"
    # a member may read the board of their own branch, not of another
    branch = mine["rank_org_id"]
    assert (await member.get("/api/v1/points/leaderboard", params={"org_id": branch})).status_code == 200
    other_branch = await world.ctx.db.fetchval("SELECT org_id FROM members WHERE id = $1", await world.member_id(7))
    assert (await member.get("/api/v1/points/leaderboard", params={"org_id": other_branch})).status_code == 404


@pytest.mark.parametrize("total,stars", [(59, 0), (60, 1), (69.5, 1), (70, 2), (80, 3), (90, 4), (95.5, 4), (96, 5)])
def test_star_bands(total: float, stars: int) -> None:
    assert points.star_for(total) == stars


async def test_rules_edit_bumps_version_and_keeps_history(world: World) -> None:
    admin = await world.admin()
    rules = (await admin.get("/api/v1/points/rules")).json()
    assert {r["code"] for r in rules} >= {"attend_theme_day", "volunteer_hour", "absence", "pairing_visit"}
    theme = next(r for r in rules if r["code"] == "attend_theme_day")
    assert theme["cap_year"] == 12 and theme["points"] == 1
    url = (await (await world.staff_a()).get(f"/api/v1/activities/{world.ids['first_activity']}/qr")).json()["url"]
    member = await world.member(1)
    first = (await member.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()})).json()
    assert first["points_awarded"] == 1
    edited = await admin.patch(f"/api/v1/points/rules/{theme['id']}", json={"points": 2})
    assert edited.status_code == 200 and edited.json()["version"] == 2 and edited.json()["points"] == 2
    entry = await world.ctx.db.fetchrow("SELECT delta, rule_version FROM points_ledger WHERE member_id = $1", world.ids["first_member"])
    assert float(entry[0]) == 1 and entry[1] == 1  # history untouched
    member2 = await world.member(2)
    second = (await member2.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()})).json()
    assert second["points_awarded"] == 2
    retired = await admin.patch(f"/api/v1/points/rules/{theme['id']}", json={"status": "retired"})
    assert retired.json()["status"] == "retired"
    member3 = await world.member(3)
    third = (await member3.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()})).json()
    assert third["status"] == "accepted" and third["points_awarded"] == 0
    staff = await world.staff_a()
    assert (await staff.patch(f"/api/v1/points/rules/{theme['id']}", json={"points": 9})).status_code == 403


async def test_close_applies_absence_once(world: World) -> None:
    staff = await world.staff_a()
    activity = world.ids["first_activity"]  # required theme day of 幸福里第一党支部 (members 1–4 in its 党小组, 5, 9, …)
    url = (await staff.get(f"/api/v1/activities/{activity}/qr")).json()["url"]
    attendee = await world.member(1)
    await attendee.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()})
    expected = await world.count(
        "SELECT COUNT(*) FROM members WHERE org_path LIKE $1 AND status IN ('normal', 'inflow')",
        await world.ctx.db.fetchval("SELECT org_path FROM activities WHERE id = $1", activity) + "%",
    )
    attendance = (await staff.get(f"/api/v1/activities/{activity}/attendance")).json()
    assert attendance["expected"] == expected and attendance["present"] == 1 and attendance["absent"] == expected - 1
    closed = await staff.post(f"/api/v1/activities/{activity}/close")
    assert closed.status_code == 200
    assert closed.json()["absentees_penalised"] == expected - 1 and not closed.json()["already_closed"]
    again = await staff.post(f"/api/v1/activities/{activity}/close")
    assert again.json()["already_closed"] and again.json()["absentees_penalised"] == 0
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE source_type = 'absence'") == expected - 1
    absent_member = await world.member(2)
    mine = (await absent_member.get("/api/v1/me/points")).json()
    assert mine["earned"] == -2 and mine["total"] == 58 and mine["star"] == 0
    # a check-in synced after closing waits for review instead of silently scoring
    late = await (await world.member(3)).post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(-60)})
    assert late.json()["status"] == "pending_review"


async def test_concurrent_closes_penalise_each_absentee_once(world: World) -> None:
    import asyncio

    staff, secretary = await world.staff_a(), await world.secretary()
    activity = world.ids["first_activity"]
    first, second = await asyncio.gather(
        staff.post(f"/api/v1/activities/{activity}/close"), secretary.post(f"/api/v1/activities/{activity}/close")
    )
    assert first.status_code == second.status_code == 200
    penalised = first.json()["absentees_penalised"] + second.json()["absentees_penalised"]
    assert penalised == await world.count("SELECT COUNT(*) FROM points_ledger WHERE source_type = 'absence'") > 0
    assert sorted([first.json()["already_closed"], second.json()["already_closed"]]) == [False, True]


async def test_a_close_waits_for_a_check_in_it_would_count_absent(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check-in that has judged the activity open must not be counted absent by a close that
    commits before the check-in does (PostgreSQL: a close used to slip in between)."""
    import asyncio

    from server.checkins.services import CheckinProcessor

    staff = await world.staff_a()
    activity = world.ids["first_activity"]  # required, open now
    url = (await staff.get(f"/api/v1/activities/{activity}/qr")).json()["url"]
    attendee, attendee_id = await world.member(1), await world.member_id(1)
    judged, release = asyncio.Event(), asyncio.Event()
    insert = CheckinProcessor._insert_checkin

    async def paused(self: CheckinProcessor, *args: object) -> object:
        judged.set()
        await release.wait()
        return await insert(self, *args)

    monkeypatch.setattr(CheckinProcessor, "_insert_checkin", paused)
    checkin = asyncio.create_task(attendee.post("/api/v1/checkins", json={
        "client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(),
    }))
    await asyncio.wait_for(judged.wait(), 10)
    close = asyncio.create_task(staff.post(f"/api/v1/activities/{activity}/close"))
    await asyncio.sleep(0.3)
    assert not close.done()  # it waits for the check-in's transaction
    release.set()
    checked, closed = await asyncio.wait_for(asyncio.gather(checkin, close), 30)
    assert (checked.status_code, checked.json()["status"], checked.json()["points_awarded"]) == (200, "accepted", 1)
    assert closed.status_code == 200 and closed.json()["absentees_penalised"] > 0
    assert await world.count(
        "SELECT COUNT(*) FROM points_ledger WHERE member_id = $1 AND source_type = 'absence'", attendee_id
    ) == 0
    assert (await attendee.get("/api/v1/me/points")).json()["earned"] == 1


@pytest.mark.parametrize("route", ["single", "sync"])
async def test_a_check_in_during_a_close_waits_for_review(
    world: World, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """A check-in that arrives while the close is being written is judged as after the close: staff
    review it (late sync), it scores nothing now, and it is never accepted behind the close's back."""
    import asyncio

    from server.activities import services as activities

    staff = await world.staff_a()
    activity = world.ids["first_activity"]
    url = (await staff.get(f"/api/v1/activities/{activity}/qr")).json()["url"]
    attendee, attendee_id = await world.member(1), await world.member_id(1)
    closing, release = asyncio.Event(), asyncio.Event()
    apply_absence = activities._apply_absence

    async def paused(*args: object) -> int:
        closing.set()
        await release.wait()
        return await apply_absence(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(activities, "_apply_absence", paused)
    close = asyncio.create_task(staff.post(f"/api/v1/activities/{activity}/close"))
    await asyncio.wait_for(closing.wait(), 10)
    item = {"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()}
    if route == "single":
        checkin = asyncio.create_task(attendee.post("/api/v1/checkins", json=item))
    else:  # a batch: its required activities are held open up front
        again = {"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(1)}
        checkin = asyncio.create_task(attendee.post("/api/v1/checkins/sync", json={"items": [item, again]}))
    await asyncio.sleep(0.3)
    release.set()
    closed, checked = await asyncio.wait_for(asyncio.gather(close, checkin), 30)
    assert closed.status_code == 200
    result = checked.json() if route == "single" else checked.json()["results"][0]
    assert (result["status"], result["reason"], result["points_awarded"]) == ("pending_review", "late_sync", 0)
    assert await world.count(
        "SELECT COUNT(*) FROM points_ledger WHERE member_id = $1 AND source_type = 'checkin'", attendee_id
    ) == 0


def _pause_first_lookup(monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """Hold the first request to look an activity up just after the lookup (before its transaction)."""
    import asyncio

    from server.activities import services as activities

    looked_up, release = asyncio.Event(), asyncio.Event()
    lookup = activities.visible_activity

    async def paused(*args: object, **kwargs: object) -> object:
        found = await lookup(*args, **kwargs)  # type: ignore[arg-type]
        if not looked_up.is_set():
            looked_up.set()
            await release.wait()
        return found

    monkeypatch.setattr(activities, "visible_activity", paused)
    return looked_up, release


async def test_a_cancel_landing_before_a_close_stops_the_close(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A close that looked at the activity before a cancel committed must not then close it and
    penalise absentees of a cancelled activity."""
    import asyncio

    staff, secretary = await world.staff_a(), await world.secretary()
    activity = world.ids["first_activity"]
    looked_up, release = _pause_first_lookup(monkeypatch)
    close = asyncio.create_task(staff.post(f"/api/v1/activities/{activity}/close"))
    await asyncio.wait_for(looked_up.wait(), 10)  # type: ignore[attr-defined]
    cancelled = await secretary.patch(f"/api/v1/activities/{activity}", json={"status": "cancelled"})
    assert cancelled.status_code == 200
    release.set()  # type: ignore[attr-defined]
    closed = await asyncio.wait_for(close, 30)
    assert (closed.status_code, closed.json()["code"]) == (409, "activity_cancelled")
    assert "取消" in closed.json()["detail"]
    assert await world.ctx.db.fetchval("SELECT status FROM activities WHERE id = $1", activity) == "cancelled"
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE source_type = 'absence'") == 0


async def test_an_edit_landing_after_a_close_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit that looked at the activity before a close committed must not cancel or re-schedule
    the closed activity (its absentees are already penalised)."""
    import asyncio

    staff, secretary = await world.staff_a(), await world.secretary()
    activity = world.ids["first_activity"]
    looked_up, release = _pause_first_lookup(monkeypatch)
    edit = asyncio.create_task(secretary.patch(f"/api/v1/activities/{activity}", json={"status": "cancelled"}))
    await asyncio.wait_for(looked_up.wait(), 10)  # type: ignore[attr-defined]
    closed = await staff.post(f"/api/v1/activities/{activity}/close")
    assert closed.status_code == 200 and closed.json()["absentees_penalised"] > 0
    release.set()  # type: ignore[attr-defined]
    edited = await asyncio.wait_for(edit, 30)
    assert (edited.status_code, edited.json()["code"]) == (409, "activity_closed")
    assert await world.ctx.db.fetchval("SELECT status FROM activities WHERE id = $1", activity) == "closed"


async def test_concurrent_decisions_apply_once(world: World) -> None:
    import asyncio

    tokens = world.ctx.tokens
    station = tokens.qr_url(tokens.station_token(world.ids["station_a"], 1))
    pending = (await (await world.member(2)).post("/api/v1/checkins", json={
        "client_uuid": new_uuid(), "token": station, "scanned_at": now_iso(),
    })).json()
    assert pending["status"] == "pending_review"
    staff, admin = await world.staff_a(), await world.admin()
    body = {"accept": True, "activity_id": world.ids["first_activity"]}
    one, two = await asyncio.gather(
        staff.post(f"/api/v1/checkins/{pending['checkin_id']}/decision", json=body),
        admin.post(f"/api/v1/checkins/{pending['checkin_id']}/decision", json=body),
    )
    assert sorted([one.status_code, two.status_code]) == [200, 409]
    member_id = await world.member_id(2)
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", member_id) == 1


async def test_a_rule_that_needs_approval_holds_points_until_staff_accept(world: World) -> None:
    admin, staff = await world.admin(), await world.staff_a()
    rules = (await admin.get("/api/v1/points/rules")).json()
    theme = next(r for r in rules if r["code"] == "attend_theme_day")
    changed = await admin.patch(f"/api/v1/points/rules/{theme['id']}", json={"needs_approval": True})
    assert changed.status_code == 200 and changed.json()["needs_approval"] is True
    activity = world.ids["first_activity"]  # an open theme day
    url = (await staff.get(f"/api/v1/activities/{activity}/qr")).json()["url"]

    member = await world.member(1)
    scan = (await member.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()})).json()
    assert (scan["status"], scan["reason"], scan["points_awarded"]) == ("pending_review", "needs_approval", 0)
    assert "审核" in scan["message"]
    first = world.ids["first_member"]
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", first) == 0
    queue = (await staff.get("/api/v1/checkins/review")).json()
    assert scan["checkin_id"] in [item["id"] for item in (queue["items"] if isinstance(queue, dict) else queue)]

    # a staff check-in is itself the approval: points at once
    second = await world.member_id(2)
    by_staff = (await staff.post("/api/v1/checkins/staff", json={
        "member_id": second, "activity_id": activity, "client_uuid": new_uuid(), "scanned_at": now_iso(), "kind": "in",
    })).json()
    assert (by_staff["status"], by_staff["points_awarded"]) == ("accepted", 1)

    decided = await staff.post(f"/api/v1/checkins/{scan['checkin_id']}/decision", json={"accept": True, "note": "到场核实"})
    assert decided.status_code == 200 and decided.json()["points_awarded"] == 1
    assert (await member.get("/api/v1/me/points")).json()["earned"] == 1
    # the member's replay of the same scan now answers with the decision
    replay = (await member.post("/api/v1/checkins", json={"client_uuid": scan["client_uuid"], "token": url, "scanned_at": now_iso()})).json()
    assert replay["status"] == "accepted" and replay["points_awarded"] == 1
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", first) == 1
