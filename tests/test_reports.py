"""Reports (/reports/*.xlsx): a small known branch — a present member, one on approved leave, two
absentees (one named like a formula, one in a 党小组), hours, a pairing — read back with openpyxl cell by
cell; scopes (members 403, out of reach 404), periods, file names."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from openpyxl import load_workbook

from tests.conftest import Api, World, has_chinese, new_uuid

R = "/api/v1/reports"
EVIL = "=cmd|' /C calc'!A0"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _local(world: World, value: datetime) -> datetime:
    return value.astimezone(world.ctx.settings.tz).replace(tzinfo=None)


def _close(a: Any, b: datetime) -> bool:
    return isinstance(a, datetime) and abs((a - b).total_seconds()) < 1


async def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


async def _dataset(world: World) -> dict[str, Any]:
    """测试支部 under 幸福里社区党委 (station A's org): 赵一 present (basic +1; rewards +5 by hand, +2.5 for
    2.5 h of volunteering, +1 for a verified visit), 钱二 on approved leave, EVIL and 孙四 (in 测试党小组) absent
    (−2 each on close); a pairing of 赵一, overdue."""
    admin = await world.admin()
    staff = await world.staff_a()
    community = int(await world.ctx.db.fetchval("SELECT id FROM orgs WHERE name = '幸福里社区党委'"))
    branch = (await _ok(await admin.post("/api/v1/orgs", json={"name": "测试支部", "kind": "branch", "parent_id": community})))["id"]
    group = (await _ok(await admin.post("/api/v1/orgs", json={"name": "测试党小组", "kind": "group", "parent_id": branch})))["id"]
    ids = {}
    for name, phone, org in (("赵一", "13700000001", branch), ("钱二", "13700000002", branch), (EVIL, "13700000003", branch),
                             ("孙四", "13700000004", group)):
        ids[name] = (await _ok(await admin.post("/api/v1/members", json={"name": name, "phone": phone, "org_id": org})))["id"]

    now = datetime.now(UTC).replace(microsecond=0)
    starts = now - timedelta(minutes=30)
    meeting = await _ok(await staff.post("/api/v1/activities", json={
        "type": "theme_day", "title": "主题党日：报表测试", "station_id": world.ids["station_a"], "org_id": branch,
        "required": True, "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
    }))
    checked_in_at = now - timedelta(minutes=20)
    scan = await _ok(await staff.post("/api/v1/checkins/staff", json={
        "member_id": ids["赵一"], "activity_id": meeting["id"], "client_uuid": new_uuid(),
        "scanned_at": checked_in_at.isoformat(), "kind": "in",
    }), 200)
    assert scan["status"] == "accepted", scan
    leave = await _ok(await staff.post(f"/api/v1/activities/{meeting['id']}/leave-requests",
                                       json={"reason": "住院", "member_id": ids["钱二"]}))
    await _ok(await staff.post(f"/api/v1/leave-requests/{leave['id']}/decision", json={"approve": True}), 200)
    closed = await _ok(await staff.post(f"/api/v1/activities/{meeting['id']}/close"), 200)
    assert closed["absentees_penalised"] == 2
    await _ok(await admin.post("/api/v1/points/adjustments", json={"member_id": ids["赵一"], "delta": 5, "reason": "表现突出"}))

    volunteer = await _ok(await staff.post("/api/v1/activities", json={
        "type": "volunteer", "title": "志愿服务：报表测试", "station_id": world.ids["station_a"],
        "starts_at": (now - timedelta(hours=3)).isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat(),
    }))
    hours_in, hours_out = now - timedelta(hours=2, minutes=30), now  # 2.5 h → +2.5 (volunteer_hour)
    for kind, at in (("in", hours_in), ("out", hours_out)):
        done = await _ok(await staff.post("/api/v1/checkins/staff", json={
            "member_id": ids["赵一"], "activity_id": volunteer["id"], "client_uuid": new_uuid(), "scanned_at": at.isoformat(),
            "kind": kind,
        }), 200)
        assert done["status"] == "accepted", done

    today = datetime.now(world.ctx.settings.tz).date()
    pairing = await _ok(await admin.post("/api/v1/pairings", json={
        "member_id": ids["赵一"], "kind": "resident", "name": "李阿婆", "category": "独居老人", "contact": "13912345678",
        "start_date": (today - timedelta(days=60)).isoformat(), "interval_days": 30,
    }))
    visits = []
    for days in (40, 35):
        visited = now - timedelta(days=days)
        visits.append(await _ok(await admin.post(f"/api/v1/pairings/{pairing['id']}/visits", json={
            "client_uuid": new_uuid(), "visited_at": visited.isoformat(), "mode": "home", "content": "上门探望",
        })))
    await _ok(await admin.post(f"/api/v1/pairings/visits/{visits[1]['id']}/verify", json={"approve": True}), 200)
    return {
        "branch": branch, "group": group, "ids": ids, "meeting": meeting, "checked_in_at": checked_in_at,
        "hours_in": hours_in, "hours_out": hours_out, "today": today, "last_visit": now - timedelta(days=35),
        "volunteer": volunteer,
    }


async def _book(api: Api, path: str, **params: Any) -> Any:
    response = await api.get(f"{R}/{path}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(XLSX)
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    return load_workbook(io.BytesIO(response.content)), response


def _rows(ws: Any, first: int) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in ws.iter_rows(min_row=first, values_only=True)]


def _assert_text(cell: Any, value: str) -> None:
    assert cell.value == value and cell.data_type == "s", (cell.value, cell.data_type)
    assert cell.quotePrefix, "formula-like text is marked as text"


async def test_points_report_cell_by_cell(world: World) -> None:
    data = await _dataset(world)
    admin = await world.admin()
    year = data["today"].year
    book, response = await _book(admin, "points.xlsx", org_id=data["branch"], year=year)
    assert quote(f"党员积分-测试支部-{year}.xlsx") in response.headers["content-disposition"]
    assert book.sheetnames == ["党员积分", "支部积分"]
    ws = book["党员积分"]
    assert ws["A1"].value == f"党员积分统计（{year}年）"
    assert "范围：测试支部" in ws["A2"].value and "Asia/Shanghai" in ws["A2"].value
    assert ws["A3"].value is None
    assert _rows(ws, 4) == [
        ("姓名", "所在支部", "起始分", "基础积分", "奖励积分", "扣减积分", "总积分", "星级", "支部内排名"),
        ("赵一", "测试支部", 60, 1, 8.5, 0, 69.5, "★", 1),
        ("钱二", "测试支部", 60, 0, 0, 0, 60, "★", 2),
        (EVIL, "测试支部", 60, 0, 0, -2, 58, "不合格", 3),
        ("孙四", "测试支部", 60, 0, 0, -2, 58, "不合格", 3),  # in 测试党小组: ranked in its branch
    ]
    _assert_text(ws["A7"], EVIL)
    ws = book["支部积分"]
    assert _rows(ws, 4) == [("支部", "党员人数", "平均积分", "积分合计", "排名"), ("测试支部", 4, round(245.5 / 4, 2), 245.5, 1)]

    # A period without entries: everyone at the base.
    book, _ = await _book(admin, "points.xlsx", org_id=data["branch"], **{"from": "2001-01-01", "to": "2001-12-31"})
    assert [r[6] for r in _rows(book["党员积分"], 5)] == [60, 60, 60, 60]
    assert book["党员积分"]["A1"].value == "党员积分统计（2001-01-01 至 2001-12-31）"


async def test_attendance_report_cell_by_cell(world: World) -> None:
    data = await _dataset(world)
    staff = await world.staff_a()  # station A's org subtree holds 测试支部
    book, response = await _book(staff, "attendance.xlsx", org_id=data["branch"])
    assert book.sheetnames == ["三会一课", "出勤明细", "党员出勤统计"]
    ws = book["三会一课"]
    header, *rows = _rows(ws, 4)
    assert header == ("开始时间", "类型", "活动名称", "组织", "服务站", "必须参加", "应到", "实到", "待审核", "请假", "缺席",
                      "出勤率", "缺席人员", "请假人员")
    assert len(rows) == 1  # the volunteer activity is not a meeting
    row = rows[0]
    assert _close(row[0], _local(world, datetime.fromisoformat(data["meeting"]["starts_at"])))
    assert row[1:] == ("主题党日", "主题党日：报表测试", "测试支部", "幸福里党员联络服务站", "是", 4, 1, 0, 1, 2, 0.25,
                       f"{EVIL}、孙四", "钱二")
    assert ws["L5"].number_format == "0.0%"
    ws = book["出勤明细"]
    header, *rows = _rows(ws, 4)
    assert header == ("开始时间", "活动名称", "姓名", "所在支部", "状态", "方式", "签到时间", "签退时间")
    assert [r[2:6] for r in rows] == [
        ("赵一", "测试支部", "出席", "手工签到"), ("钱二", "测试支部", "请假", None),
        (EVIL, "测试支部", "缺席", None), ("孙四", "测试支部", "缺席", None),
    ]
    assert _close(rows[0][6], _local(world, data["checked_in_at"])) and rows[0][7] is None
    assert ws["G5"].number_format == "yyyy-mm-dd hh:mm"
    _assert_text(ws["C7"], EVIL)
    ws = book["党员出勤统计"]
    assert _rows(ws, 4) == [
        ("姓名", "所在支部", "应参加", "出席", "待审核", "请假", "缺席", "出勤率"),
        (EVIL, "测试支部", 1, 0, 0, 0, 1, 0),
        ("孙四", "测试支部", 1, 0, 0, 0, 1, 0),
        ("赵一", "测试支部", 1, 1, 0, 0, 0, 1),
        ("钱二", "测试支部", 1, 0, 0, 1, 0, 0),
    ]
    # A member who attended and has since moved out (转出) is no longer in the active list the report
    # starts from: their check-in still shows, with their name and branch.
    moved = await world.ctx.db.fetchval("SELECT id FROM members WHERE name = '赵一'")
    await world.ctx.db.execute("UPDATE members SET status = 'transferred' WHERE id = $1", moved)
    book, _ = await _book(staff, "attendance.xlsx", org_id=data["branch"])
    rows = _rows(book["出勤明细"], 5)
    assert rows[0][2:6] == ("赵一", "测试支部", "出席", "手工签到")
    assert [r[0] for r in _rows(book["党员出勤统计"], 5)] == [EVIL, "孙四", "钱二"]


async def test_volunteer_hours_report_cell_by_cell(world: World) -> None:
    data = await _dataset(world)
    secretary_scope = await world.admin()
    record = await world.ctx.db.fetchrow(
        "SELECT local_date, hours, approved_hours, status FROM volunteer_hours WHERE member_id = $1", data["ids"]["赵一"]
    )
    assert float(record[1]) == 2.5 and record[3] == "approved"
    book, _ = await _book(secretary_scope, "volunteer-hours.xlsx", org_id=data["branch"], year=record[0].year)
    assert book.sheetnames == ["志愿时长汇总", "志愿时长明细"]
    assert _rows(book["志愿时长汇总"], 4) == [
        ("姓名", "所在支部", "已认定时长", "待审核时长", "记录数"),
        ("赵一", "测试支部", 2.5, 0, 1),
        (EVIL, "测试支部", 0, 0, 0),
        ("孙四", "测试支部", 0, 0, 0),
        ("钱二", "测试支部", 0, 0, 0),
        ("合计", None, 2.5, 0, 1),
    ]
    _assert_text(book["志愿时长汇总"]["A6"], EVIL)
    ws = book["志愿时长明细"]
    header, *rows = _rows(ws, 4)
    assert header == ("服务日期", "姓名", "所在支部", "活动名称", "服务站", "签到时间", "签退时间", "计算时长", "认定时长", "状态")
    assert len(rows) == 1
    row = rows[0]
    assert row[0] == datetime.combine(record[0], datetime.min.time()) and ws["A5"].number_format == "yyyy-mm-dd"
    assert row[1:5] == ("赵一", "测试支部", "志愿服务：报表测试", "幸福里党员联络服务站")
    assert _close(row[5], _local(world, data["hours_in"])) and _close(row[6], _local(world, data["hours_out"]))
    assert row[7:] == (2.5, 2.5, "已认定")


async def test_pairings_report_cell_by_cell(world: World) -> None:
    data = await _dataset(world)
    admin = await world.admin()
    today: date = data["today"]
    period = {"from": (today - timedelta(days=90)).isoformat(), "to": today.isoformat()}
    book, response = await _book(admin, "pairings.xlsx", org_id=data["branch"], **period)
    assert book.sheetnames == ["一帮一结对"]
    ws = book["一帮一结对"]
    assert "逾期 1 对" in ws["A2"].value
    header, *rows = _rows(ws, 4)
    assert header == ("党员", "所在支部", "结对对象", "对象类型", "对象类别", "开始日期", "结束日期", "状态", "走访间隔（天）",
                      "走访次数", "已核实次数", "最近走访", "应走访日期", "是否逾期", "逾期天数")
    assert len(rows) == 1
    row = rows[0]
    last_visit_day = data["last_visit"].astimezone(world.ctx.settings.tz).date()
    due = last_visit_day + timedelta(days=30)
    assert row[:5] == ("赵一", "测试支部", "李阿婆", "困难群众/居民", "独居老人")
    assert row[5] == datetime.combine(today - timedelta(days=60), datetime.min.time()) and row[6] is None
    assert row[7:11] == ("进行中", 30, 2, 1)
    assert _close(row[11], _local(world, data["last_visit"]))
    assert row[12] == datetime.combine(due, datetime.min.time())
    assert row[13:] == ("是", (today - due).days)
    assert "13912345678" not in str(_rows(ws, 1))  # contacts stay out of the file

    # A period before the pairing started: no row.
    book, _ = await _book(admin, "pairings.xlsx", org_id=data["branch"], year=2001)
    assert _rows(book["一帮一结对"], 5) == []


async def test_report_scopes_periods_and_errors(world: World) -> None:
    data = await _dataset(world)
    member = await world.member(1)
    for path in ("points.xlsx", "attendance.xlsx", "volunteer-hours.xlsx", "pairings.xlsx"):
        answer = await member.get(f"{R}/{path}")
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden" and has_chinese(answer.json()["detail"])
        staff_b = await world.staff_b()  # 和平苑: 测试支部 is not theirs
        assert (await staff_b.get(f"{R}/{path}", params={"org_id": data["branch"]})).status_code == 404
        assert (await staff_b.get(f"{R}/{path}", params={"org_id": 99999999})).status_code == 404
        assert (await world.anon.get(f"{R}/{path}")).status_code == 401
    secretary = await world.secretary()  # 幸福里第一党支部 only
    assert (await secretary.get(f"{R}/points.xlsx", params={"org_id": data["branch"]})).status_code == 404
    book, _ = await _book(secretary, "points.xlsx")
    names = [r[0] for r in _rows(book["党员积分"], 5)]
    assert names and "赵一" not in names and EVIL not in names
    assert {r[1] for r in _rows(book["党员积分"], 5)} == {"幸福里第一党支部"}  # the 党小组 rolls up to its branch

    staff_b = await world.staff_b()
    book, _ = await _book(staff_b, "volunteer-hours.xlsx")
    assert "赵一" not in [r[0] for r in _rows(book["志愿时长汇总"], 5)]

    admin = await world.admin()
    for params, code in (
        ({"year": 2026, "from": "2026-01-01", "to": "2026-02-01"}, "invalid_period"),
        ({"from": "2026-01-01"}, "invalid_period"),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "invalid_period"),
        ({"year": 1999}, None),
        ({"from": "2026-02-30", "to": "2026-03-01"}, None),
    ):
        answer = await admin.get(f"{R}/points.xlsx", params=params)
        assert answer.status_code == 400, (params, answer.text)
        assert has_chinese(answer.json()["detail"])
        if code:
            assert answer.json()["code"] == code


@pytest.mark.parametrize("path", ["points.xlsx", "attendance.xlsx", "volunteer-hours.xlsx", "pairings.xlsx"])
async def test_whole_street_reports_open(world: World, path: str) -> None:
    admin = await world.admin()
    book, response = await _book(admin, path)
    assert "红驿街道党工委" in response.headers["content-disposition"] or "%E7%BA%A2" in response.headers["content-disposition"]
    assert book.sheetnames
