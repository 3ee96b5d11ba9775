"""What the staff panel downloads and watches: PDF posters, the attendance sheet, the live station feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from tests import pdfread
from tests.conftest import World, has_chinese, new_uuid, now_iso

A4_QR_PT = 150 * 72 / 25.4  # the QR is 150 mm wide on the poster


def _expected_cells(url: str) -> set[tuple[int, int]]:
    from server.core.qr import _qr

    matrix = _qr(url, 1).get_matrix()
    cells = {(r, c) for r, row in enumerate(matrix) for c, dark in enumerate(row) if dark}
    top, left = min(r for r, _ in cells), min(c for _, c in cells)
    return {(r - top, c - left) for r, c in cells}


def _assert_poster(pdf: bytes, url: str, *needles: str) -> list[str]:
    from server.core.qr import _qr

    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert pdfread.page_count(pdf) == 1
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf  # A4
    assert b"/STSong-Light" in pdf and b"/FontFile" not in pdf  # the readers' CID font, nothing embedded
    texts = pdfread.texts(pdf)
    joined = "\n".join(texts)
    for needle in needles:
        assert needle in joined, (needle, texts)
    assert "用手机相机、微信“扫一扫”或红驿应用扫码；无网络时也可签到，联网后自动同步" in texts
    modules = len(_qr(url, 1).get_matrix())
    assert pdfread.qr_cells(pdf, modules, A4_QR_PT) == _expected_cells(url)  # the very code of the SVG/PNG
    return texts


async def test_station_poster_pdf(world: World) -> None:
    staff = await world.staff_a()
    station_id = world.ids["station_a"]
    response = await staff.get(f"/api/v1/stations/{station_id}/poster", params={"format": "pdf"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('inline; filename="station-') and "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("''", 1)[1]) == "幸福里党员联络服务站-签到海报.pdf"
    url = (await staff.get(f"/api/v1/stations/{station_id}/poster", params={"format": "json"})).json()["url"]
    _assert_poster(response.content, url, "幸福里党员联络服务站", "幸福里小区 3 号楼一层", "党员扫码签到 ・ 到站登记", "红驿 ・ 党员联络服务站")
    # scope: another station's staff, a member, a missing station — all 404
    for api in (await world.staff_b(), await world.member(1)):
        denied = await api.get(f"/api/v1/stations/{station_id}/poster", params={"format": "pdf"})
        assert denied.status_code == 404 and denied.json()["code"] == "not_found"
    assert (await staff.get("/api/v1/stations/999999/poster", params={"format": "pdf"})).status_code == 404
    bad = await staff.get(f"/api/v1/stations/{station_id}/poster", params={"format": "docx"})
    assert bad.status_code == 400 and has_chinese(bad.json()["detail"])


async def test_activity_qr_pdf_with_time_and_odd_title(world: World) -> None:
    staff = await world.staff_a()
    now = datetime.now(UTC).replace(microsecond=0)
    title = '党课（第二讲）："不忘初心" · 牢记使命 ✨ 🇨🇳 <b>&' + "很长的标题" * 12
    created = await staff.post("/api/v1/activities", json={
        "type": "party_lecture", "title": title, "station_id": world.ids["station_a"],
        "starts_at": (now + timedelta(hours=2)).isoformat(), "ends_at": (now + timedelta(hours=4)).isoformat(),
    })
    assert created.status_code == 201, created.text
    activity = created.json()
    response = await staff.get(f"/api/v1/activities/{activity['id']}/qr", params={"format": "pdf"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert f'filename="activity-{activity["id"]}.pdf"' in disposition
    assert unquote(disposition.split("''", 1)[1]).startswith("党课（第二讲）：_不忘初心_ · 牢记使命")
    url = (await staff.get(f"/api/v1/activities/{activity['id']}/qr")).json()["url"]
    world.ctx.settings.tz  # noqa: B018 — the poster shows local time
    starts = datetime.fromisoformat(activity["starts_at"]).astimezone(world.ctx.settings.tz)
    ends = datetime.fromisoformat(activity["ends_at"]).astimezone(world.ctx.settings.tz)
    span = f"{starts:%Y-%m-%d %H:%M}–" + (f"{ends:%H:%M}" if ends.date() == starts.date() else f"{ends:%Y-%m-%d %H:%M}")
    texts = _assert_poster(response.content, url, "党课（第二讲）", span, "幸福里党员联络服务站", "扫码签到")
    # the long title is wrapped onto two lines (ending in …), emoji are left out
    assert any(t.startswith('党课（第二讲）："不忘初心" ・ 牢记使命 <b>&') for t in texts)
    assert any(t.endswith("…") for t in texts) and not any("✨" in t for t in texts)
    # scope and state
    staff_b = await world.staff_b()
    assert (await staff_b.get(f"/api/v1/activities/{activity['id']}/qr", params={"format": "pdf"})).status_code == 404
    assert (await staff.patch(f"/api/v1/activities/{activity['id']}", json={"status": "cancelled"})).status_code == 200
    cancelled = await staff.get(f"/api/v1/activities/{activity['id']}/qr", params={"format": "pdf"})
    assert cancelled.status_code == 409 and has_chinese(cancelled.json()["detail"])


async def test_attendance_xlsx(world: World) -> None:
    import io

    from openpyxl import load_workbook

    activity_id = world.ids["first_activity"]  # 主题党日, required, open now at station A, 幸福里第一党支部
    staff = await world.staff_a()
    secretary = await world.secretary()
    branch = await world.ctx.db.fetchval("SELECT org_id FROM activities WHERE id = $1", activity_id)
    formula = await secretary.post("/api/v1/members", json={"name": "=HYPERLINK(\"x\")", "phone": "13612340000", "org_id": branch})
    assert formula.status_code == 201, formula.text
    url = (await staff.get(f"/api/v1/activities/{activity_id}/qr")).json()["url"]
    scanned = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)

    def item(**kw):
        return {"client_uuid": new_uuid(), "token": url, "scanned_at": scanned.isoformat(), **kw}

    me = await world.member(1)
    assert (await me.post("/api/v1/checkins", json=item())).json()["status"] == "accepted"
    out = await me.post("/api/v1/checkins", json=item(kind="out", scanned_at=(scanned + timedelta(minutes=2)).isoformat()))
    assert out.json()["status"] == "accepted", out.text
    card = world.ctx.tokens.qr_url(world.ctx.tokens.member_token(await world.member_id(2), 1))
    staff_body = {"activity_id": activity_id, "client_uuid": new_uuid(), "scanned_at": scanned.isoformat()}
    assert (await staff.post("/api/v1/checkins/staff", json={**staff_body, "member_token": card})).json()["status"] == "accepted"
    manual = {**staff_body, "client_uuid": new_uuid(), "member_id": await world.member_id(3)}
    assert (await staff.post("/api/v1/checkins/staff", json=manual)).json()["status"] == "accepted"
    far = await (await world.member(4)).post("/api/v1/checkins", json=item(lat=0.0, lng=0.0, accuracy_m=10))
    assert far.json()["status"] == "pending_review", far.text

    response = await staff.get(f"/api/v1/activities/{activity_id}/attendance.xlsx")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="attendance-{activity_id}.xlsx"; filename*=UTF-8\'\'')
    assert unquote(disposition.split("''", 1)[1]) == "主题党日：学习新修订的党章-签到表.xlsx"

    ws = load_workbook(io.BytesIO(response.content)).active
    json_report = (await staff.get(f"/api/v1/activities/{activity_id}/attendance")).json()
    tz = world.ctx.settings.tz
    activity = (await staff.get(f"/api/v1/activities/{activity_id}")).json()
    starts = datetime.fromisoformat(activity["starts_at"]).astimezone(tz)
    assert ws["A1"].value == "主题党日：学习新修订的党章"
    assert ws["A2"].value.startswith(f"时间：{starts:%Y-%m-%d %H:%M}–") and "幸福里党员联络服务站" in ws["A2"].value
    assert ws["A3"].value == (
        f"应到 {json_report['expected']} 人　出席 3 人　待审核 1 人　请假 0 人　缺席 {json_report['expected'] - 4} 人"
    )
    header = [c.value for c in ws[5]]
    assert header == ["姓名", "支部", "状态", "方式", "签到时间", "签退时间"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=6)]
    assert len(rows) == len(json_report["items"]) == json_report["expected"]
    by_name: dict[str, list] = {}
    for row in rows:  # demo names repeat (member i and i + 20)
        by_name.setdefault(row[0], []).append(row[1:])
    names = {i: await world.ctx.db.fetchval("SELECT name FROM members WHERE id = $1", await world.member_id(i)) for i in (1, 2, 3, 4)}
    local_in = scanned.astimezone(tz).replace(tzinfo=None)
    group = "第一党小组"  # members 1–4 are in the branch's party group
    assert [group, "出席", "本人扫码", local_in, local_in + timedelta(minutes=2)] in by_name[names[1]]
    assert [group, "出席", "工作人员扫证", local_in, None] in by_name[names[2]]
    assert [group, "出席", "手工签到", local_in, None] in by_name[names[3]]
    assert [group, "待审核", "本人扫码", local_in, None] in by_name[names[4]]
    assert by_name['=HYPERLINK("x")'] == [["幸福里第一党支部", "缺席", None, None, None]]
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), key=["出席", "待审核", "请假", "缺席"].index)
    formula_cell = next(row[0] for row in ws.iter_rows(min_row=6) if row[0].value == '=HYPERLINK("x")')
    assert formula_cell.data_type == "s"  # text, never a formula
    assert ws.cell(row=6, column=5).number_format == "yyyy-mm-dd hh:mm"
    # the JSON endpoint keeps its fields (plus excused, from leave requests)
    assert set(json_report) == {"activity_id", "required", "expected", "present", "pending", "absent", "excused", "items"}

    for api in (await world.staff_b(), await world.member(1)):
        denied = await api.get(f"/api/v1/activities/{activity_id}/attendance.xlsx")
        assert denied.status_code == 404 and has_chinese(denied.json()["detail"])
    assert (await staff.get("/api/v1/activities/999999/attendance.xlsx")).status_code == 404
    assert (await secretary.get(f"/api/v1/activities/{activity_id}/attendance.xlsx")).status_code == 200


def test_mask_name() -> None:
    from server.core.masking import mask_name, mask_phone

    assert [mask_name(n) for n in ("张三", "王建国", "欧阳建国", "李", " 赵六 ", "", "阿卜杜热合曼")] == [
        "张*", "王*国", "欧*国", "李*", "赵*", "*", "阿*曼",
    ]
    assert mask_phone("13900000001") == "139****0001"


async def test_live_station_feed(world: World) -> None:
    staff = await world.staff_a()
    secretary = await world.secretary()
    station_a, first = world.ids["station_a"], world.ids["first_activity"]
    branch = await world.ctx.db.fetchval("SELECT org_id FROM activities WHERE id = $1", first)
    empty = await staff.get(f"/api/v1/stations/{station_a}/live")
    assert empty.status_code == 200, empty.text
    assert empty.headers["cache-control"] == "private, no-store"
    feed = empty.json()
    assert set(feed) == {"station_id", "activities", "recent"} and feed["station_id"] == station_a and feed["recent"] == []
    titles = [a["title"] for a in feed["activities"]]
    # the seed's two open activities; last week's lecture and next week's meeting are not today's
    assert titles == ["志愿服务：社区环境整治", "主题党日：学习新修订的党章"]
    assert all(a["status"] == "open" and a["checked_in"] == 0 and a["pending"] == 0 for a in feed["activities"])
    assert set(feed["activities"][0]) == {"id", "title", "starts_at", "ends_at", "status", "checked_in", "pending"}
    now = datetime.now(UTC)
    cancelled = await staff.post("/api/v1/activities", json={
        "type": "other", "title": "取消的活动", "station_id": station_a,
        "starts_at": (now - timedelta(minutes=5)).isoformat(), "ends_at": (now + timedelta(minutes=30)).isoformat(),
    })
    assert (await staff.patch(f"/api/v1/activities/{cancelled.json()['id']}", json={"status": "cancelled"})).status_code == 200

    names = ["张三", "李小明", "欧阳建国"]
    ids = []
    for index, name in enumerate(names):
        made = await secretary.post("/api/v1/members", json={"name": name, "phone": f"1361111000{index}", "org_id": branch})
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    url = (await staff.get(f"/api/v1/activities/{first}/qr")).json()["url"]
    far = await (await world.member(4)).post("/api/v1/checkins", json={
        "client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(-600), "lat": 0.0, "lng": 0.0, "accuracy_m": 5,
    })
    assert far.json()["status"] == "pending_review"
    for offset in range(9):  # older self check-ins of other members, to push the list past ten
        done = await (await world.member(5 + offset * 4)).post("/api/v1/checkins", json={
            "client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(-500 + offset),
        })
        assert done.json()["status"] in ("accepted", "rejected"), done.text
    for index, member_id in enumerate(ids):
        body = {"member_id": member_id, "activity_id": first, "client_uuid": new_uuid(), "scanned_at": now_iso(-60 + index)}
        assert (await staff.post("/api/v1/checkins/staff", json=body)).json()["status"] == "accepted"

    feed = (await staff.get(f"/api/v1/stations/{station_a}/live")).json()
    theme = next(a for a in feed["activities"] if a["id"] == first)
    accepted = await world.count("SELECT COUNT(*) FROM checkins WHERE activity_id = $1 AND status = 'accepted' AND kind = 'in'", first)
    assert theme["checked_in"] == accepted >= 3 and theme["pending"] == 1
    assert "取消的活动" not in [a["title"] for a in feed["activities"]]
    recent = feed["recent"]
    assert len(recent) == 10
    assert [r["name_masked"] for r in recent[:3]] == ["欧*国", "李*明", "张*"]
    assert recent[0] == {**recent[0], "kind": "in", "method": "staff_manual", "status": "accepted", "activity_id": first}
    times = [datetime.fromisoformat(r["at"]) for r in recent]
    assert times == sorted(times, reverse=True)
    assert all("*" in r["name_masked"] for r in recent)

    # scope: staff of another station, a branch secretary whose branch does not own the station, a member
    for api in (await world.staff_b(), secretary, await world.member(1)):
        denied = await api.get(f"/api/v1/stations/{station_a}/live")
        assert denied.status_code == 404 and denied.json()["code"] == "not_found" and has_chinese(denied.json()["detail"])
    assert (await (await world.staff_b()).get(f"/api/v1/stations/{world.ids['station_b']}/live")).status_code == 200
    assert (await (await world.admin()).get(f"/api/v1/stations/{station_a}/live")).status_code == 200
    assert (await staff.get("/api/v1/stations/999999/live")).status_code == 404
    assert (await staff.get("/api/v1/stations/abc/live")).status_code in (400, 404)


async def test_member_deactivate_and_reactivate(world: World) -> None:
    admin = await world.admin()
    member_id = world.ids["first_member"]
    member = await world.member(1)
    off = await admin.patch(f"/api/v1/members/{member_id}", json={"status": "transferred"})
    assert off.status_code == 200 and off.json()["status"] == "transferred"
    assert (await member.get("/api/v1/me")).status_code == 401
    back = await admin.patch(f"/api/v1/members/{member_id}", json={"status": "normal"})
    assert back.status_code == 200 and back.json()["status"] == "normal"
    assert (await member.get("/api/v1/me")).status_code == 200  # a member transferred back can log in again
    login = await world.anon.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "hongyi-member"})
    assert login.status_code == 200
    board = (await admin.get("/api/v1/points/leaderboard")).json()
    assert member_id in [r["member_id"] for r in board["rows"]]
    bad = await admin.patch(f"/api/v1/members/{member_id}", json={"status": "gone"})
    assert bad.status_code == 400 and has_chinese(bad.json()["detail"])


async def test_staff_checkout_kiosks_and_review_input(world: World) -> None:
    staff = await world.staff_a()
    volunteer = next(a for a in (await staff.get("/api/v1/activities", params={"status": "open"})).json() if a["type"] == "volunteer")
    member_id = await world.member_id(2)
    body = {"member_id": member_id, "activity_id": volunteer["id"], "client_uuid": new_uuid(), "scanned_at": now_iso(-1800)}
    assert (await staff.post("/api/v1/checkins/staff", json=body)).json()["status"] == "accepted"
    out = await staff.post("/api/v1/checkins/staff", json={**body, "client_uuid": new_uuid(), "scanned_at": now_iso(), "kind": "out"})
    assert out.status_code == 200 and out.json()["status"] == "accepted", out.text
    both = await staff.post("/api/v1/checkins/staff", json={**body, "client_uuid": new_uuid(), "member_token": "x"})
    assert both.status_code == 400 and both.json()["code"] == "member_required" and has_chinese(both.json()["detail"])
    wrong_kind = await staff.post("/api/v1/checkins/staff", json={**body, "client_uuid": new_uuid(), "kind": "exit"})
    assert wrong_kind.status_code == 400 and has_chinese(wrong_kind.json()["detail"])
    not_a_card = await staff.post("/api/v1/checkins/staff", json={**body, "member_id": None, "member_token": "garbage", "client_uuid": new_uuid()})
    assert 400 <= not_a_card.status_code < 500 and has_chinese(not_a_card.json()["detail"])

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from server.keys.keyring import public_jwk

    station_a = world.ids["station_a"]
    jwk = public_jwk(Ed25519PrivateKey.generate().public_key(), "ignored")
    kiosk = await staff.post(f"/api/v1/stations/{station_a}/kiosks", json={"name": "大厅屏", "public_key_jwk": jwk})
    assert kiosk.status_code == 201, kiosk.text
    listed = (await staff.get(f"/api/v1/stations/{station_a}/kiosks")).json()
    assert [k["id"] for k in listed] == [kiosk.json()["id"]] and listed[0]["status"] == "active"
    assert (await (await world.staff_b()).delete(f"/api/v1/kiosks/{kiosk.json()['id']}")).status_code == 404
    assert (await staff.delete(f"/api/v1/kiosks/{kiosk.json()['id']}")).status_code == 204
    assert (await staff.delete(f"/api/v1/kiosks/{kiosk.json()['id']}")).status_code == 204  # already revoked: no-op
    assert (await staff.get(f"/api/v1/stations/{station_a}/kiosks")).json()[0]["status"] == "revoked"
    private = await staff.post(f"/api/v1/stations/{station_a}/kiosks", json={"name": "x", "public_key_jwk": {"kty": "RSA"}})
    assert private.status_code == 400 and has_chinese(private.json()["detail"])

    bad_decision = await staff.post("/api/v1/checkins/1/decision", json={"accept": "yes"})
    assert bad_decision.status_code in (400, 404) and has_chinese(bad_decision.json()["detail"])


async def test_member_search_filters_and_scope(world: World) -> None:
    staff_a, staff_b = await world.staff_a(), await world.staff_b()
    branch_a = await world.ctx.db.fetchval("SELECT org_id FROM activities WHERE id = $1", world.ids["first_activity"])
    found = await staff_a.get("/api/v1/members", params={"org_id": branch_a, "q": "王", "status": "normal"})
    assert found.status_code == 200 and found.json() and all("王" in m["name"] and "****" in m["phone"] for m in found.json())
    by_phone = (await staff_a.get("/api/v1/members", params={"q": "13900000001"})).json()
    assert [m["id"] for m in by_phone] == [world.ids["first_member"]]
    out_of_reach = await staff_b.get("/api/v1/members", params={"org_id": branch_a})
    assert out_of_reach.status_code == 404 and out_of_reach.json() == (await staff_b.get("/api/v1/members", params={"org_id": 999999})).json()
    member = await world.member(1)
    own_branch = (await member.get("/api/v1/members", params={"org_id": branch_a})).json()
    assert [m["id"] for m in own_branch] == [world.ids["first_member"]]
    assert (await member.get("/api/v1/members", params={"status": "dead"})).status_code == 400
