"""Issue 5 items 1–3: rules with versions, adjustments (党费逾期), rankings by year/quarter/month with
shared ranks, branch 赛马 (attendance with excused leave, bands at the thresholds), the monthly trend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.points import race
from server.points import services as points
from server.settings import Settings, SettingsError
from tests.conftest import World, has_chinese, new_uuid, now_iso

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _post(world: World, member_id: int, delta: float, when: datetime, code: str = "manual_reward") -> None:
    """A ledger entry at a given moment (adjustments via the API are stamped now)."""
    ctx = world.ctx
    rule = await points.rule_by_code(ctx, code)
    org_path = await ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member_id)
    async with ctx.db.transaction():
        await points.post_entry(
            ctx, member_id=member_id, org_path=org_path, delta=delta, occurred_at=when, source_type="adjustment",
            source_id=None, rule=rule, reason="测试",
        )


async def _branch_members(world: World) -> dict[str, list[int]]:
    """Seed branch name → active member ids (group members roll up into 幸福里第一党支部)."""
    rows = await world.ctx.db.fetch(
        "SELECT m.id, o.name FROM members m JOIN orgs o ON m.org_path LIKE o.path || '%'"
        " WHERE o.kind IN ('branch', 'joint_branch', 'floating_branch') AND m.status IN ('normal', 'inflow')"
        " ORDER BY m.id"
    )
    out: dict[str, list[int]] = {}
    for member_id, name in rows:
        out.setdefault(name, []).append(member_id)
    return out


# ------------------------------------------------------------------------------------ rules


async def test_rule_versions_keep_history_and_old_entries_keep_their_version(world: World) -> None:
    admin = await world.admin()
    rules = {r["code"]: r for r in (await admin.get("/api/v1/points/rules")).json()}
    assert {rules[c]["category"] for c in ("attend_theme_day", "volunteer_hour", "absence")} == {"basic", "reward", "penalty"}
    lecture = rules["attend_party_lecture"]
    member_id = world.ids["first_member"]
    rule = await points.rule_by_code(world.ctx, "attend_party_lecture")
    org_path = await world.ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member_id)
    async with world.ctx.db.transaction():
        await points.award(world.ctx, member_id=member_id, org_path=org_path, rule=rule, units=1,
                           occurred_at=datetime.now(UTC), source_type="checkin", source_id=777)
    edited = await admin.patch(f"/api/v1/points/rules/{lecture['id']}", json={"points": 3, "cap_month": 6})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    same = await admin.patch(f"/api/v1/points/rules/{lecture['id']}", json={"points": 3})
    assert same.json()["version"] == 2  # no change, no new version
    versions = (await admin.get(f"/api/v1/points/rules/{lecture['id']}/versions")).json()
    assert [(v["version"], v["points"], v["cap_month"]) for v in versions] == [(1, 1, None), (2, 3, 6)]
    assert versions[1]["changed_by"] == world.ids["admin"] and versions[0]["changed_by"] is None
    mine = (await (await world.member(1)).get("/api/v1/me/points")).json()
    entry = next(e for e in mine["entries"] if e["rule_code"] == "attend_party_lecture")
    assert (entry["delta"], entry["rule_version"], entry["rule_id"]) == (1, 1, lecture["id"])  # history untouched
    # a new award uses version 2
    rule = await points.rule_by_code(world.ctx, "attend_party_lecture")
    async with world.ctx.db.transaction():
        await points.award(world.ctx, member_id=member_id, org_path=org_path, rule=rule, units=1,
                           occurred_at=datetime.now(UTC), source_type="checkin", source_id=778)
    rows = await world.ctx.db.fetch(
        "SELECT delta, rule_version FROM points_ledger WHERE rule_id = $1 ORDER BY id", lecture["id"]
    )
    assert [(float(r[0]), r[1]) for r in rows] == [(1.0, 1), (3.0, 2)]
    # retire: a new version, the rule stops firing
    retired = await admin.patch(f"/api/v1/points/rules/{lecture['id']}", json={"status": "retired"})
    assert retired.json()["status"] == "retired" and retired.json()["version"] == 3
    assert await points.rule_by_code(world.ctx, "attend_party_lecture") is None


async def test_rule_create_covers_triggers_caps_validity_and_bad_input(world: World) -> None:
    admin = await world.admin()
    body = {
        "code": "dues_paid_early", "name": "提前交纳党费", "category": "reward", "trigger": "manual", "points": 1,
        "cap_day": 1, "cap_month": 2, "cap_year": 10, "needs_approval": True, "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
    }
    created = await admin.post("/api/v1/points/rules", json=body)
    assert created.status_code == 201, created.text
    out = created.json()
    assert (out["cap_day"], out["cap_month"], out["cap_year"], out["needs_approval"], out["version"]) == (1, 2, 10, True, 1)
    assert out["valid_from"] == "2026-01-01" and out["valid_to"] == "2026-12-31"
    versions = (await admin.get(f"/api/v1/points/rules/{out['id']}/versions")).json()
    assert [v["version"] for v in versions] == [1]
    cases = [
        ({**body, "code": "x1", "trigger": "nonsense"}, 400),
        ({**body, "code": "x2", "category": "penalty"}, 400),  # a penalty cannot add points
        ({**body, "code": "x3", "points": -1}, 400),  # a reward cannot take points
        ({**body, "code": "x4", "valid_to": "2025-12-31"}, 400),
        ({**body, "code": "x5", "cap_day": 0}, 400),
        ({**body, "code": "x6", "category": "bonus"}, 400),
        (body, 409),
    ]
    for payload, status in cases:
        response = await admin.post("/api/v1/points/rules", json=payload)
        assert response.status_code == status, (payload, response.text)
        assert has_chinese(response.json()["detail"])
    rule_id = out["id"]
    bad_patch = await admin.patch(f"/api/v1/points/rules/{rule_id}", json={"valid_to": "2025-01-01"})
    assert bad_patch.status_code == 400 and bad_patch.json()["code"] == "invalid_dates"
    sign = await admin.patch(f"/api/v1/points/rules/{rule_id}", json={"category": "penalty"})
    assert sign.status_code == 400 and sign.json()["code"] == "points_sign"
    assert (await admin.patch("/api/v1/points/rules/99999", json={"points": 1})).status_code == 404
    secretary = await world.secretary()
    assert (await secretary.post("/api/v1/points/rules", json={**body, "code": "x7"})).status_code == 403
    assert (await admin.get(f"/api/v1/points/rules/{rule_id}/versions")).json()[0]["version"] == 1


# ------------------------------------------------------------------------------ adjustments


async def test_adjustment_categories_with_who_when_why(world: World) -> None:
    secretary = await world.secretary()
    member_id = world.ids["first_member"]
    dues = await secretary.post("/api/v1/points/adjustments", json={
        "member_id": member_id, "delta": -2, "reason": "三月党费逾期未交", "category": "dues_overdue",
    })
    assert dues.status_code == 201, dues.text
    entry = dues.json()
    assert entry["rule_code"] == "dues_overdue" and entry["created_by"] == world.ids["secretary"]
    assert entry["reason"] == "三月党费逾期未交" and entry["created_at"] and entry["rule_version"] == 1
    deduction = await secretary.post("/api/v1/points/adjustments", json={
        "member_id": member_id, "delta": -1, "reason": "会议迟到", "category": "deduction"})
    assert deduction.json()["rule_code"] == "manual_deduction"
    reward = await secretary.post("/api/v1/points/adjustments", json={"member_id": member_id, "delta": 4, "reason": "表现突出"})
    assert reward.json()["rule_code"] == "manual_reward"
    bad = [
        ({"delta": 2, "category": "dues_overdue"}, 400, "delta_sign"),
        ({"delta": -2, "category": "reward"}, 400, "delta_sign"),
        ({"delta": 2, "category": "deduction"}, 400, "delta_sign"),
        ({"delta": -2, "category": "dues_overdue", "rule_code": "manual_reward"}, 400, "category_mismatch"),
        ({"delta": -2, "category": "late_fee"}, 400, "invalid_input"),
        ({"delta": 101}, 400, "invalid_type"),
        ({"delta": 1, "reason": "  "}, 400, "reason_required"),
    ]
    for extra, status, code in bad:
        response = await secretary.post("/api/v1/points/adjustments", json={"member_id": member_id, "reason": "测试原因", **extra})
        assert (response.status_code, response.json()["code"]) == (status, code), (extra, response.text)
        assert has_chinese(response.json()["detail"])
    # append-only: three rows, nothing edited
    rows = await world.ctx.db.fetch("SELECT delta FROM points_ledger WHERE member_id = $1 ORDER BY id", member_id)
    assert [float(r[0]) for r in rows] == [-2.0, -1.0, 4.0]


async def test_adjustment_scope(world: World) -> None:
    member_in_b = await world.member_id(3 + 4)  # index 6 → branches[2] (和平苑第一党支部), station B's community
    member_in_a = world.ids["first_member"]
    body = {"delta": 1, "reason": "范围测试"}
    secretary = await world.secretary()  # secretary of 幸福里第一党支部
    assert (await secretary.post("/api/v1/points/adjustments", json={**body, "member_id": member_in_b})).status_code == 404
    assert (await secretary.post("/api/v1/points/adjustments", json={**body, "member_id": 999999})).status_code == 404
    staff_b = await world.staff_b()
    assert (await staff_b.post("/api/v1/points/adjustments", json={**body, "member_id": member_in_a})).status_code == 404
    assert (await staff_b.post("/api/v1/points/adjustments", json={**body, "member_id": member_in_b})).status_code == 201
    member = await world.member(2)
    denied = await member.post("/api/v1/points/adjustments", json={**body, "member_id": member_in_a})
    assert denied.status_code == 403 and has_chinese(denied.json()["detail"])


async def test_rejected_checkin_reversal_moves_year_and_period_tallies_back(world: World) -> None:
    ctx = world.ctx
    member = world.ids["first_member"]
    when = datetime(2026, 3, 31, 23, 30, tzinfo=SHANGHAI)  # March locally, 15:30 UTC
    rule = await points.rule_by_code(ctx, "attend_party_lecture")
    org_path = await ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member)
    async with ctx.db.transaction():
        await points.award(ctx, member_id=member, org_path=org_path, rule=rule, units=1, occurred_at=when,
                           source_type="checkin", source_id=555)
    rows = await ctx.db.fetch("SELECT period, earned FROM points_tally_period WHERE member_id = $1 AND org_id = $2 ORDER BY period",
                              member, world.ids["street"])
    assert [(r[0], float(r[1])) for r in rows] == [(3, 1.0), (21, 1.0)]
    async with ctx.db.transaction():
        assert await points.reverse_source(ctx, "checkin", 555, created_by=None, reason="审核不通过，冲销积分") == -1
    rows = await ctx.db.fetch("SELECT earned FROM points_tally_period WHERE member_id = $1", member)
    assert rows and all(float(r[0]) == 0 for r in rows)
    assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1 AND reverses_id IS NOT NULL", member) == 1


# ------------------------------------------------------------------------ ranks and periods


async def test_period_edges_in_shanghai_and_shared_ranks(world: World) -> None:
    ids = [await world.member_id(i) for i in (1, 2, 3, 4)]  # 第一党小组 of 幸福里第一党支部
    # 2026-03-31 23:30 Shanghai = 15:30 UTC (March, Q1); 2026-04-01 00:10 Shanghai = 03-31 16:10 UTC (April, Q2)
    march = datetime(2026, 3, 31, 23, 30, tzinfo=SHANGHAI)
    april = datetime(2026, 4, 1, 0, 10, tzinfo=SHANGHAI)
    assert april.astimezone(UTC).month == 3
    await _post(world, ids[0], 5, march)
    await _post(world, ids[1], 5, march)
    await _post(world, ids[2], 3, march)
    await _post(world, ids[3], 7, april)
    await _post(world, ids[2], -4, april, "manual_deduction")
    admin = await world.admin()
    street = world.ids["street"]

    async def board(**params: Any) -> list[tuple[int, int, float]]:
        response = await admin.get("/api/v1/points/leaderboard", params={"org_id": street, "year": 2026, "limit": 500, **params})
        assert response.status_code == 200, response.text
        return [(r["member_id"], r["rank"], r["earned"]) for r in response.json()["rows"]]

    march_board = await board(month=3)
    assert march_board[:3] == [(ids[0], 1, 5), (ids[1], 1, 5), (ids[2], 3, 3)]  # competition ranking 1, 1, 3
    assert {r[2] for r in march_board[3:]} == {0} and {r[1] for r in march_board[3:]} == {4}
    assert len(march_board) == 40  # every active member, zeros included
    april_board = await board(month=4)
    assert april_board[0] == (ids[3], 1, 7)
    assert april_board[-1] == (ids[2], 40, -4) and april_board[1][1] == 2  # the negative after all the zeros
    assert (await board(quarter=1))[:3] == march_board[:3]
    q2 = await board(quarter=2)
    assert q2[0] == (ids[3], 1, 7) and q2[-1] == (ids[2], 40, -4)
    year = await board()
    assert year[:3] == [(ids[3], 1, 7), (ids[0], 2, 5), (ids[1], 2, 5)] and year[3][1:] == (4, 0)
    assert year[-1] == (ids[2], 40, -1)
    top2 = await board(month=4, limit=2)
    assert [r[1] for r in top2] == [1, 2]
    # my rank in the branch for a period
    member3 = await world.member(3)
    mine = (await member3.get("/api/v1/me/points", params={"year": 2026, "month": 4})).json()
    assert (mine["earned"], mine["month"], mine["quarter"]) == (-4, 4, None)
    assert mine["rank"] == mine["rank_members"] and mine["rank_org_name"] == "幸福里第一党支部"
    assert [e["delta"] for e in mine["entries"]] == [-4]
    q1 = (await member3.get("/api/v1/me/points", params={"year": 2026, "quarter": 1})).json()
    assert (q1["earned"], q1["rank"]) == (3, 3) and q1["total"] == 63
    member1 = await world.member(1)
    assert (await member1.get("/api/v1/me/points", params={"year": 2026, "month": 3})).json()["rank"] == 1
    assert (await (await world.member(2)).get("/api/v1/me/points", params={"year": 2026, "month": 3})).json()["rank"] == 1


async def test_period_bad_input_is_4xx_chinese(world: World) -> None:
    admin = await world.admin()
    member = await world.member(1)
    bad = [
        (admin, "/api/v1/points/leaderboard", {"quarter": 5}),
        (admin, "/api/v1/points/leaderboard", {"month": 0}),
        (admin, "/api/v1/points/leaderboard", {"month": 3, "quarter": 1}),
        (admin, "/api/v1/points/leaderboard", {"year": 1999}),
        (admin, "/api/v1/points/leaderboard", {"limit": 0}),
        (admin, "/api/v1/points/branches", {"month": "三月"}),
        (admin, "/api/v1/points/branches", {"quarter": 2, "month": 4}),
        (admin, "/api/v1/points/trend", {"year": "abc"}),
        (member, "/api/v1/me/points", {"quarter": 9}),
        (member, "/api/v1/me/points", {"quarter": 1, "month": 1}),
    ]
    for api, url, params in bad:
        response = await api.get(url, params=params)
        assert response.status_code == 400, (url, params, response.text)
        assert has_chinese(response.json()["detail"])
    other_branch = await world.ctx.db.fetchval("SELECT org_id FROM members WHERE id = $1", await world.member_id(7))
    for url in ("/api/v1/points/branches", "/api/v1/points/trend", "/api/v1/points/leaderboard"):
        assert (await member.get(url, params={"org_id": other_branch})).status_code == 404
        assert (await admin.get(url, params={"org_id": 999999})).status_code == 404
    staff_b = await world.staff_b()
    community_a = await world.ctx.db.fetchval("SELECT id FROM orgs WHERE name = '幸福里社区党委'")
    assert (await staff_b.get("/api/v1/points/branches", params={"org_id": community_a})).status_code == 404
    assert (await staff_b.get("/api/v1/points/branches")).status_code == 200


# ------------------------------------------------------------------------------- 赛马


@pytest.mark.parametrize("rank,n,band", [
    (1, 5, "先进"), (2, 5, "中间"), (4, 5, "中间"), (5, 5, "后进"),
    (1, 4, "中间"), (4, 4, "中间"),  # ⌊4 × 0.2⌋ = 0: no band with four branches
    (2, 10, "先进"), (3, 10, "中间"), (8, 10, "中间"), (9, 10, "后进"), (10, 10, "后进"),
])
def test_band_thresholds(rank: int, n: int, band: str) -> None:
    assert race.band_for(rank, n, 0.2, 0.2) == band


def test_race_settings_validation() -> None:
    base = {"DATABASE_URL": "sqlite:///x.db"}
    settings = Settings.from_env({**base, "HONGYI_RACE_TOP": "0.1", "HONGYI_RACE_BOTTOM": "0.3"})
    assert (settings.race_top, settings.race_bottom) == (0.1, 0.3)
    assert Settings.from_env(base).race_top == 0.2
    for env in ({"HONGYI_RACE_TOP": "20%"}, {"HONGYI_RACE_TOP": "1.5"}, {"HONGYI_RACE_BOTTOM": "-0.1"},
                {"HONGYI_RACE_TOP": "0.6", "HONGYI_RACE_BOTTOM": "0.5"}):
        with pytest.raises(SettingsError):
            Settings.from_env({**base, **env})


async def test_branch_race_points_attendance_and_bands(world: World) -> None:
    ctx = world.ctx
    branches = await _branch_members(world)
    assert len(branches) == 4
    first = branches["幸福里第一党支部"]
    staff = await world.staff_a()
    activity = world.ids["first_activity"]  # required 主题党日 of 幸福里第一党支部, starting this hour
    url = (await staff.get(f"/api/v1/activities/{activity}/qr")).json()["url"]
    await (await world.member(1)).post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()})
    leave = (await (await world.member(2)).post(f"/api/v1/activities/{activity}/leave-requests", json={"reason": "出差"})).json()
    assert (await staff.post(f"/api/v1/leave-requests/{leave['id']}/decision", json={"approve": True})).status_code == 200
    closed = await staff.post(f"/api/v1/activities/{activity}/close")
    assert closed.status_code == 200
    admin = await world.admin()
    local_now = datetime.now(UTC).astimezone(SHANGHAI)
    starts = await ctx.db.fetchval("SELECT starts_at FROM activities WHERE id = $1", activity)
    month = starts.astimezone(SHANGHAI).month

    async def race_rows(**params: Any) -> dict[str, dict[str, Any]]:
        response = await admin.get("/api/v1/points/branches", params={"org_id": world.ids["street"], **params})
        assert response.status_code == 200, response.text
        return {r["org_name"]: r for r in response.json()["branches"]}

    rows = await race_rows(year=starts.astimezone(SHANGHAI).year, month=month)
    mine = rows["幸福里第一党支部"]
    n = len(first)
    assert (mine["members"], mine["expected"], mine["attended"], mine["excused"]) == (n, n, 1, 1)
    assert mine["attendance_rate"] == round(1 / (n - 1), 4)
    # points: +1 for the theme day, −2 for each unexcused absentee
    ledger = await ctx.db.fetchval(
        "SELECT COALESCE(SUM(l.delta), 0) FROM points_ledger l JOIN members m ON m.id = l.member_id"
        f" WHERE l.member_id IN ({', '.join(str(i) for i in first)})"
    )
    assert mine["earned"] == float(ledger) == 1 - 2 * (n - 2)
    assert mine["avg_points"] == round(60 + float(ledger) / n, 2)
    assert mine["score"] == round(mine["avg_points"] * mine["attendance_rate"], 4)
    others = [r for name, r in rows.items() if name != "幸福里第一党支部"]
    assert all(r["attendance_rate"] is None and r["avg_points"] == 60 and r["score"] == 60 for r in others)
    assert [r["rank"] for r in others] == [1, 1, 1] and mine["rank"] == 4
    assert {r["band"] for r in rows.values()} == {"中间"}  # ⌊4 × 0.2⌋ = 0 with the default settings

    # leave approved after the close: absent → excused; a late check-in accepted on review: absent → attended
    leave3 = (await staff.post(f"/api/v1/activities/{activity}/leave-requests",
                               json={"reason": "住院", "member_id": await world.member_id(3)})).json()
    assert (await staff.post(f"/api/v1/leave-requests/{leave3['id']}/decision", json={"approve": True})).status_code == 200
    late = (await (await world.member(4)).post("/api/v1/checkins", json={
        "client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(-60)})).json()
    assert late["status"] == "pending_review"
    mid = (await race_rows(month=month))["幸福里第一党支部"]
    assert (mid["attended"], mid["excused"]) == (1, 2)  # a check-in after the close counts once accepted
    decided = await staff.post(f"/api/v1/checkins/{late['checkin_id']}/decision", json={"accept": True})
    assert decided.status_code == 200, decided.text
    after = (await race_rows(month=month))["幸福里第一党支部"]
    assert (after["expected"], after["attended"], after["excused"]) == (n, 2, 2)
    assert after["attendance_rate"] == round(2 / (n - 2), 4)
    quarter = (local_now.month + 2) // 3
    if month == local_now.month:
        assert (await race_rows(quarter=quarter))["幸福里第一党支部"]["attended"] == 2
    assert (await race_rows())["幸福里第一党支部"]["expected"] == n  # the year

    # bands with 25 %: one 先进 and one 后进 among four; ties at the top share the better band
    ctx.settings = replace(ctx.settings, race_top=0.25, race_bottom=0.25)
    await _post(world, branches["和平苑第一党支部"][0], 10, datetime.now(UTC))
    banded = await race_rows(month=month) if month == local_now.month else await race_rows()
    assert banded["和平苑第一党支部"]["band"] == "先进" and banded["和平苑第一党支部"]["rank"] == 1
    assert banded["幸福里第一党支部"]["band"] == "后进" and banded["幸福里第一党支部"]["rank"] == 4
    assert banded["幸福里商户联合党支部"]["band"] == "中间" and banded["和平苑流动党员党支部"]["band"] == "中间"
    ctx.settings = replace(ctx.settings, race_top=0.5, race_bottom=0.25)
    tied = await race_rows(month=month) if month == local_now.month else await race_rows()
    # 2 places for 先进: rank 1, then a tie of two at rank 2 — both 先进
    assert [tied[name]["band"] for name in ("和平苑第一党支部", "幸福里商户联合党支部", "和平苑流动党员党支部")] == ["先进"] * 3
    response = await admin.get("/api/v1/points/branches", params={"org_id": world.ids["street"]})
    assert response.json()["top_fraction"] == 0.5


async def test_member_sees_race_of_their_branch(world: World) -> None:
    member = await world.member(1)
    response = await member.get("/api/v1/points/branches")
    assert response.status_code == 200
    body = response.json()
    assert [b["org_name"] for b in body["branches"]] == ["幸福里第一党支部"]
    secretary = await world.secretary()
    assert [b["org_name"] for b in (await secretary.get("/api/v1/points/branches")).json()["branches"]] == ["幸福里第一党支部"]


# --------------------------------------------------------------------------------- trend


async def test_trend_sums_equal_ledger_sums(world: World) -> None:
    ctx = world.ctx
    branches = await _branch_members(world)
    moments = [
        datetime(2026, 1, 1, 0, 5, tzinfo=SHANGHAI),  # 2025-12-31 UTC, January locally
        datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI),
        datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI),
        datetime(2026, 12, 31, 23, 59, tzinfo=SHANGHAI),
        datetime(2026, 7, 15, 12, tzinfo=SHANGHAI),
    ]
    for i, (name, members) in enumerate(sorted(branches.items())):
        for j, member_id in enumerate(members[:4]):
            await _post(world, member_id, 1 + (i + j) % 3, moments[(i + j) % len(moments)])
            if j == 1:
                await _post(world, member_id, -2, moments[(i + 2) % len(moments)], "manual_deduction")
    await _post(world, branches["幸福里第一党支部"][0], 9, datetime(2025, 12, 31, 23, 0, tzinfo=SHANGHAI))  # not 2026
    admin = await world.admin()
    trend = (await admin.get("/api/v1/points/trend", params={"org_id": world.ids["street"], "year": 2026})).json()
    assert trend["year"] == 2026 and len(trend["branches"]) == 4
    for row in trend["branches"]:
        assert len(row["points"]) == 12
        ids = branches[row["org_name"]]
        ledger = await ctx.db.fetch(
            f"SELECT local_date, delta FROM points_ledger WHERE year = 2026 AND member_id IN ({', '.join(map(str, ids))})"
        )
        expected = [0.0] * 12
        for local_date, delta in ledger:
            expected[local_date.month - 1] += float(delta)
        assert row["points"] == expected, row["org_name"]
    assert trend["totals"] == [sum(r["points"][m] for r in trend["branches"]) for m in range(12)]
    assert trend["totals"][0] != 0 and trend["totals"][11] != 0
    # the quarter 赛马 agrees with the trend
    race_q2 = (await admin.get("/api/v1/points/branches", params={"org_id": world.ids["street"], "year": 2026, "quarter": 2})).json()
    by_name = {r["org_name"]: r for r in trend["branches"]}
    for row in race_q2["branches"]:
        assert row["earned"] == sum(by_name[row["org_name"]]["points"][3:6])


async def test_backfill_sql_rebuilds_the_period_tally(world: World) -> None:
    """The migration's backfill statements give exactly the rows kept by the write path (both engines)."""
    from migrations.m0008_period_tally import BACKFILL_MONTHS, BACKFILL_QUARTERS

    ctx = world.ctx
    ids = [await world.member_id(i) for i in (1, 5, 6, 7)]
    for k, member_id in enumerate(ids):
        await _post(world, member_id, k + 1, datetime(2026, 3, 31, 23, 30, tzinfo=SHANGHAI))
        await _post(world, member_id, -1, datetime(2026, 4, 1, 0, 30, tzinfo=SHANGHAI), "manual_deduction")
        await _post(world, member_id, 2, datetime(2025, 11, 2, 8, tzinfo=SHANGHAI))
    kept = sorted(tuple(r) for r in await ctx.db.fetch(
        "SELECT org_id, year, period, member_id, earned FROM points_tally_period"))
    async with ctx.db.transaction():
        await ctx.db.execute("DELETE FROM points_tally_period")
        await ctx.db.execute(BACKFILL_MONTHS)
        await ctx.db.execute(BACKFILL_QUARTERS)
    rebuilt = sorted(tuple(r) for r in await ctx.db.fetch(
        "SELECT org_id, year, period, member_id, earned FROM points_tally_period"))
    assert kept and rebuilt == kept


async def test_transfer_and_inactive_members_move_period_rows(world: World) -> None:
    ctx = world.ctx
    member_id = await world.member_id(6)
    await _post(world, member_id, 4, datetime(2026, 5, 10, 10, tzinfo=SHANGHAI))
    admin = await world.admin()
    target = await ctx.db.fetchval("SELECT id FROM orgs WHERE name = '幸福里商户联合党支部'")
    moved = await admin.patch(f"/api/v1/members/{member_id}", json={"org_id": target})
    assert moved.status_code == 200, moved.text
    rows = await ctx.db.fetch(
        "SELECT DISTINCT org_id FROM points_tally_period WHERE member_id = $1 AND year = 2026 AND period = 5", member_id
    )
    path = await ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member_id)
    assert sorted(r[0] for r in rows) == sorted(points.path_ids(path))
    board = (await admin.get("/api/v1/points/leaderboard", params={"org_id": target, "year": 2026, "month": 5})).json()
    assert board["rows"][0]["member_id"] == member_id and board["rows"][0]["earned"] == 4
    gone = await admin.patch(f"/api/v1/members/{member_id}", json={"status": "transferred"})
    assert gone.status_code == 200, gone.text
    assert await world.count("SELECT COUNT(*) FROM points_tally_period WHERE member_id = $1", member_id) == 0


async def test_a_required_activity_never_closed_still_counts_in_the_race(world: World) -> None:
    """Staff forget to close: the ended activity's absentees must still lower the branch's rate,
    counted once — before the close (at read time) and after it (from the tally)."""
    ctx = world.ctx
    branch_id = await ctx.db.fetchval("SELECT id FROM orgs WHERE name = '和平苑第一党支部'")
    members = (await _branch_members(world))["和平苑第一党支部"]
    admin = await world.admin()
    starts = datetime.now(UTC) - timedelta(hours=3)
    created = await admin.post("/api/v1/activities", json={
        "type": "branch_meeting", "title": "支部党员大会（忘记结束）", "station_id": world.ids["station_a"],
        "org_id": branch_id, "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "required": True,
    })
    assert created.status_code == 201, created.text
    activity = created.json()["id"]
    checked = await admin.post("/api/v1/checkins/staff", json={
        "member_id": members[0], "activity_id": activity, "client_uuid": new_uuid(),
        "scanned_at": (starts + timedelta(minutes=5)).isoformat(), "kind": "in",
    })
    assert checked.status_code == 200 and checked.json()["status"] == "accepted", checked.text
    local = starts.astimezone(SHANGHAI)

    async def row() -> dict[str, Any]:
        response = await admin.get("/api/v1/points/branches", params={"year": local.year, "month": local.month})
        return next(r for r in response.json()["branches"] if r["org_id"] == branch_id)

    n = len(members)
    before = await row()
    assert (before["expected"], before["attended"], before["excused"]) == (n, 1, 0)
    assert before["attendance_rate"] == round(1 / n, 4)
    assert await world.count("SELECT COUNT(*) FROM attendance_tally") == 0  # read time only: nothing stored
    # a community-level view counts it too (the branch sits under the community)
    community = await ctx.db.fetchval("SELECT parent_id FROM orgs WHERE id = $1", branch_id)
    response = await admin.get("/api/v1/points/branches", params={"org_id": community, "year": local.year, "month": local.month})
    assert next(r for r in response.json()["branches"] if r["org_id"] == branch_id)["expected"] == n

    assert (await admin.post(f"/api/v1/activities/{activity}/close")).status_code == 200
    after = await row()
    assert (after["expected"], after["attended"], after["attendance_rate"]) == (n, 1, round(1 / n, 4))  # not twice
