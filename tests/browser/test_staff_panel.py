"""The staff panel in real Chromium: activity → poster → a member checks in → live count; kiosk
rotating codes; staff card scan offline; station scopes; screenshots at 360 and 1280 px."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

from tests.browser.conftest import (
    STAFF_A,
    STAFF_B,
    Browser,
    Live,
    api_login,
    login,
    screenshot_both,
    staff_login,
    wait_offline_ready,
    y4m_from_png,
)


def now_iso(delta_seconds: float = 0) -> str:
    return (datetime.now().astimezone() + timedelta(seconds=delta_seconds)).isoformat()


def test_staff_creates_activity_prints_poster_and_sees_member_check_in_live(
    live: Live, browser: Browser, second_browser: Browser, tmp_path: Path
) -> None:
    member = live.activated_member("现场党员")
    page = browser.launch()
    staff_login(page)
    screenshot_both(page, live, "staff-dashboard")

    page.goto("/staff/activities")
    page.locator("[data-test=new-activity]").click()
    page.locator("[data-test=activity-title] input").fill("主题党日：工作人员新建")
    page.locator("[data-test=activity-type]").select_option("theme_day")
    screenshot_both(page, live, "staff-activity-form")
    page.locator("[data-test=save-activity]").click()
    page.wait_for_url(re.compile(r"/staff/activities/\d+$"))
    activity_id = int(page.url.rsplit("/", 1)[1])
    page.locator("[data-test=present-count]").wait_for()
    screenshot_both(page, live, "staff-activity")

    page.goto(f"/staff/poster/activity/{activity_id}")
    page.locator("[data-test=poster] svg").wait_for()
    assert page.locator("[data-test=poster-title]").inner_text() == "主题党日：工作人员新建"
    assert "微信" in page.locator("[data-test=poster]").inner_text()
    screenshot_both(page, live, "staff-poster")

    page.goto("/staff")
    count = page.locator(f"[data-test=live-count-{activity_id}]")
    count.wait_for()
    assert count.inner_text() == "0"

    camera = y4m_from_png(live.activity_qr_png(activity_id), tmp_path / "activity.y4m")
    phone = second_browser.launch(camera)
    login(phone, member)
    phone.locator("[data-test=open-scanner]").click()
    phone.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('签到成功')", timeout=20_000)

    # The dashboard updates by itself (no reload) within 5 s.
    page.wait_for_function(f"document.querySelector('[data-test=live-count-{activity_id}]').textContent === '1'", timeout=5_000)
    screenshot_both(page, live, "staff-dashboard-live")
    assert live.sql("SELECT method, status FROM checkins WHERE activity_id = $1", activity_id) == [("self", "accepted")]


def test_kiosk_rotates_offline_and_its_codes_are_judged_by_age_and_revocation(
    live: Live, browser: Browser, second_browser: Browser
) -> None:
    station_id = live.station_id("幸福里")
    member = live.activated_member("签到屏党员")
    page = browser.launch()
    staff_login(page)
    page.clock.install()
    page.goto(f"/kiosk/{station_id}")
    page.locator("[data-test=kiosk-enable]").click()
    qr = page.locator("[data-test=kiosk-qr]")
    page.wait_for_function("document.querySelector('[data-test=kiosk-qr]')?.dataset.url?.includes('/q/')")
    first = qr.get_attribute("data-url")
    screenshot_both(page, live, "staff-kiosk")

    # Offline, the tablet keeps signing new codes on its own.
    browser.context.set_offline(True)
    page.clock.fast_forward(21_000)
    page.wait_for_function(f"document.querySelector('[data-test=kiosk-qr]').dataset.url !== {first!r}")
    rotated = qr.get_attribute("data-url")
    assert rotated != first and qr.locator("svg").count() == 1
    browser.context.set_offline(False)
    page.clock.fast_forward(21_000)
    page.wait_for_function(f"document.querySelector('[data-test=kiosk-qr]').dataset.url !== {rotated!r}")
    current = qr.get_attribute("data-url")

    # A member scans the current code with the phone camera: accepted, method kiosk.
    phone = second_browser.launch()
    login(phone, member)
    phone.goto(current.replace(live.base_url, ""))
    # The demo station has two activities open now: the member picks one.
    phone.wait_for_function("document.querySelector('[data-test=scan-headline]') || document.querySelector('.van-action-sheet__item')")
    if phone.locator(".van-action-sheet__item").count():
        phone.locator(".van-action-sheet__item").first.click()
    try:
        phone.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.match(/签到成功|到站登记成功/)", timeout=20_000)
    except Exception:
        print("PHONE", phone.locator("body").inner_text())
        raise
    assert live.sql("SELECT method, status FROM checkins WHERE member_id = $1", member["id"]) == [("kiosk", "accepted")]
    # The kiosk shows the check-in within a few seconds, the name masked (签*员).
    page.clock.run_for(4_000)
    page.wait_for_function("document.querySelector('[data-test=kiosk-recent]')?.textContent.includes('签*员')")
    assert "签到屏党员" not in page.locator("[data-test=kiosk-recent]").inner_text()

    # A code scanned more than 60 s after it was made is rejected.
    token = current.rsplit("/q/", 1)[1]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    made_at = datetime.fromtimestamp(claims["iat"]).astimezone()
    with live.as_member(member) as client:
        stale = client.post("/api/v1/checkins", json={
            "client_uuid": "kiosk-stale-001", "token": token, "scanned_at": (made_at + timedelta(seconds=61)).isoformat(),
        })
        assert stale.status_code == 422 and stale.json()["reason"] == "expired"

        # Revoked: the next code is refused, and the kiosk says so.
        kiosk_id = int(header["kid"].removeprefix("k"))
        with api_login(live, STAFF_A) as staff:
            assert staff.delete(f"/api/v1/kiosks/{kiosk_id}").status_code in (200, 204)
        page.clock.fast_forward(21_000)
        page.wait_for_function(f"document.querySelector('[data-test=kiosk-qr]').dataset.url !== {current!r}")
        after = qr.get_attribute("data-url").rsplit("/q/", 1)[1]
        after_iat = json.loads(base64.urlsafe_b64decode(after.split(".")[1] + "=="))["iat"]
        revoked = client.post("/api/v1/checkins", json={
            "client_uuid": "kiosk-revoked-01", "token": after, "scanned_at": datetime.fromtimestamp(after_iat + 5).astimezone().isoformat(),
        })
        assert revoked.status_code == 422 and revoked.json()["reason"] == "revoked"
    page.clock.fast_forward(31_000)
    page.locator("[data-test=kiosk-revoked]").wait_for()


def test_staff_scans_a_member_card_offline_and_it_syncs_as_staff_card(live: Live, browser: Browser, tmp_path: Path) -> None:
    member = live.activated_member("持证老党员")
    station_id = live.station_id("幸福里")
    with api_login(live, STAFF_A) as staff:
        starts = datetime.now().astimezone() - timedelta(minutes=20)
        activity = staff.post("/api/v1/activities", json={
            "type": "group_meeting", "title": "党小组会：扫证签到", "station_id": station_id,
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
        }).raise_for_status().json()
    camera = y4m_from_png(live.card_png(member["id"]), tmp_path / "card.y4m")

    # Online once without the card in view: the app, keys and the station's activities get cached.
    page = browser.launch()
    staff_login(page)
    page.goto(f"/staff/scan?activity_id={activity['id']}")
    page.wait_for_function(f"document.querySelector('[data-test=staff-activity]')?.value === '{activity['id']}'")
    wait_offline_ready_staff(page)

    # Offline, the card is shown to the camera.
    page = browser.launch(camera, offline=True)
    response = page.goto(f"/staff/scan?activity_id={activity['id']}")
    assert response is not None and response.from_service_worker
    page.wait_for_function(f"document.querySelector('[data-test=staff-activity]')?.value === '{activity['id']}'")
    try:
        page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('联网后自动同步')", timeout=20_000)
    except Exception:
        print("STAFF", page.locator("body").inner_text())
        raise
    assert "党员证" in page.locator("[data-test=scan-detail]").inner_text()
    screenshot_both(page, live, "staff-scan")
    assert live.sql("SELECT count(*) FROM checkins WHERE member_id = $1", member["id"]) == [(0,)]

    browser.context.set_offline(False)
    page.locator("[data-test=staff-item][data-status=accepted]").first.wait_for(timeout=20_000)
    rows = live.sql("SELECT method, status, activity_id FROM checkins WHERE member_id = $1", member["id"])
    assert rows == [("staff_card", "accepted", activity["id"])]


def wait_offline_ready_staff(page) -> None:
    """Service worker in control and the keys cached (the staff page cached its activities itself)."""
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.wait_for_function(
        """async () => {
            const db = await new Promise((ok, bad) => { const r = indexedDB.open('hongyi'); r.onsuccess = () => ok(r.result); r.onerror = bad })
            const get = (key) => new Promise((ok) => { const r = db.transaction('kv').objectStore('kv').get(key); r.onsuccess = () => ok(r.result) })
            const [jwks, acts] = await Promise.all([get('jwks'), get('staff_activities')])
            db.close()
            return Boolean(jwks && acts)
        }"""
    )


def test_staff_of_one_station_cannot_see_or_act_on_another(live: Live, browser: Browser) -> None:
    station_b = live.station_id("和平苑")
    station_a = live.station_id("幸福里")
    with api_login(live, STAFF_B) as staff_b:
        starts = datetime.now().astimezone()
        activity_b = staff_b.post("/api/v1/activities", json={
            "type": "party_lecture", "title": "和平苑党课", "station_id": station_b,
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat(),
        }).raise_for_status().json()
    member = live.activated_member("越权测试党员")

    with api_login(live, STAFF_A) as staff_a:
        for path in (f"/api/v1/stations/{station_b}", f"/api/v1/activities/{activity_b['id']}",
                     f"/api/v1/activities/{activity_b['id']}/attendance", f"/api/v1/stations/{station_b}/kiosks"):
            answer = staff_a.get(path)
            assert answer.status_code == 404 and answer.json()["code"] == "not_found", path
        checkin = staff_a.post("/api/v1/checkins/staff", json={
            "activity_id": activity_b["id"], "member_id": member["id"], "client_uuid": "scope-test-0001", "scanned_at": now_iso(),
        })
        assert checkin.status_code == 404
        closing = staff_a.post(f"/api/v1/activities/{activity_b['id']}/close")
        assert closing.status_code == 404
        assert [s["id"] for s in staff_a.get("/api/v1/stations").json()] == [station_a]

    page = browser.launch()
    staff_login(page)
    assert "和平苑" not in page.locator(".page").inner_text()
    page.goto(f"/staff/activities/{activity_b['id']}")
    page.get_by_text("不存在").first.wait_for()
    page.goto("/staff/activities")
    page.locator(".van-cell").first.wait_for()
    assert "和平苑党课" not in page.locator(".page").inner_text()
    assert live.sql("SELECT count(*) FROM checkins WHERE activity_id = $1", activity_b["id"]) == [(0,)]


def test_review_members_and_admin_pages(live: Live, browser: Browser) -> None:
    """Every remaining staff page renders (with screenshots at both sizes); a review decision
    updates points at once."""
    station_id = live.station_id("幸福里")
    member = live.activated_member("审核党员")
    # A late offline sync (> 72 h) lands in the review queue.
    with api_login(live, STAFF_A) as staff:
        starts = datetime.now().astimezone() - timedelta(days=4)
        old = staff.post("/api/v1/activities", json={
            "type": "theme_day", "title": "四天前的主题党日", "station_id": station_id,
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
        }).raise_for_status().json()
        token = staff.get(f"/api/v1/activities/{old['id']}/qr").json()["token"]
    with live.as_member(member) as client:
        late = client.post("/api/v1/checkins", json={
            "client_uuid": "late-sync-000001", "token": token, "scanned_at": (starts + timedelta(minutes=10)).isoformat(),
        }).json()
        assert late["status"] == "pending_review"
        before = client.get("/api/v1/me/points").json()["earned"]

    page = browser.launch()
    admin = {"phone": "13800000000", "password": "hongyi-admin"}
    staff_login(page, admin)
    page.goto("/staff/review")
    page.locator("[data-test=review-item]").first.wait_for()
    screenshot_both(page, live, "staff-review")
    page.locator("[data-test=review-item]", has_text="审核党员").locator("[data-test=accept]").click()
    page.locator(".van-dialog__confirm").click()
    page.get_by_text("已通过").wait_for()
    with live.as_member(member) as client:
        assert client.get("/api/v1/me/points").json()["earned"] > before

    page.goto("/staff/members")
    page.locator(".van-cell").first.wait_for()
    screenshot_both(page, live, "staff-members")
    page.goto(f"/staff/members/{member['id']}")
    page.get_by_role("button", name="生成激活码").click()
    page.locator("[data-test=invite] svg").wait_for()
    screenshot_both(page, live, "staff-member")
    page.goto("/staff/admin")
    page.locator(".van-cell").first.wait_for()
    screenshot_both(page, live, "staff-admin")
    page.goto("/staff/more")
    screenshot_both(page, live, "staff-more")


def test_staff_checks_in_and_out_by_hand_edits_and_closes_an_activity(live: Live, browser: Browser) -> None:
    member = live.activated_member("手工签到党员")
    station_id = live.station_id("幸福里")
    with api_login(live, STAFF_A) as staff:
        starts = datetime.now().astimezone() - timedelta(minutes=30)
        activity = staff.post("/api/v1/activities", json={
            "type": "volunteer", "title": "志愿服务：手工签到", "station_id": station_id, "records_hours": True,
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=3)).isoformat(),
        }).raise_for_status().json()

    page = browser.launch()
    staff_login(page)
    page.goto(f"/staff/scan?activity_id={activity['id']}")
    page.wait_for_function(f"document.querySelector('[data-test=staff-activity]')?.value === '{activity['id']}'")
    page.get_by_role("tab", name="查找党员").click()
    page.locator("[data-test=member-search] input").fill("手工签到党员")
    page.locator("[data-test=member-search] input").press("Enter")
    page.locator(f"[data-test=manual-{member['id']}]").click()
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('签到成功')")
    page.get_by_text("签退", exact=True).click()
    page.locator(f"[data-test=manual-{member['id']}]").click()
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('签退成功')", timeout=20_000)
    rows = live.sql("SELECT kind, method, status FROM checkins WHERE member_id = $1 ORDER BY kind", member["id"])
    assert rows == [("in", "staff_manual", "accepted"), ("out", "staff_manual", "accepted")]

    page.goto(f"/staff/activities/{activity['id']}/edit")
    title = page.locator("[data-test=activity-title] input")
    page.wait_for_function("document.querySelector('[data-test=activity-title] input')?.value === '志愿服务：手工签到'")
    title.fill("志愿服务：手工签到（已改名）")
    page.locator("[data-test=save-activity]").click()
    page.get_by_text("志愿服务：手工签到（已改名）").wait_for()
    assert page.locator("[data-test=present-count]").inner_text() == "1"
    assert "手工签到" in page.locator("[data-test=attendance]").inner_text()

    page.locator("[data-test=close-activity]").click()
    page.locator(".van-dialog__confirm").click()
    page.get_by_text("已结束").first.wait_for()
    assert live.sql("SELECT status, title FROM activities WHERE id = $1", activity["id"]) == [("closed", "志愿服务：手工签到（已改名）")]


def test_admin_adds_a_member_transfers_them_and_grants_a_role(live: Live, browser: Browser) -> None:
    page = browser.launch()
    staff_login(page, {"phone": "13800000000", "password": "hongyi-admin"})
    page.goto("/staff/members")
    page.locator("[data-test=add-member]").click()
    dialog = page.locator(".van-dialog")
    dialog.get_by_placeholder("必填").first.fill("新来的党员")
    phone = f"136{int(time.time() * 1000) % 10**8:08d}"
    dialog.locator("input[type=tel]").fill(phone)
    dialog.locator("select").select_option(label="幸福里第一党支部")
    dialog.locator(".van-dialog__confirm").click()
    page.wait_for_url(re.compile(r"/staff/members/\d+$"))
    member_id = int(page.url.rsplit("/", 1)[1])

    target = live.org_id("和平苑第一党支部")
    page.locator("select[aria-label='所在组织（转接）']").select_option(str(target))
    page.get_by_role("button", name="保存").click()
    page.get_by_text("已保存").wait_for()
    assert live.sql("SELECT org_id, name FROM members WHERE id = $1", member_id) == [(target, "新来的党员")]

    page.goto("/staff/admin")
    page.get_by_role("tab", name="人员授权").click()
    page.get_by_role("button", name="添加授权").click()
    dialog = page.locator(".van-dialog")
    dialog.locator("input[type=tel]").fill(phone)
    dialog.locator("select[aria-label='服务站']").select_option(str(live.station_id("和平苑")))
    dialog.locator(".van-dialog__confirm").click()
    page.locator(".van-cell", has_text="新来的党员").wait_for()
    assert "服务站工作人员 · 和平苑" in page.locator(".van-cell", has_text="新来的党员").inner_text()
    grants = live.sql(
        "SELECT g.role, g.station_id FROM role_grants g JOIN users u ON u.id = g.user_id WHERE u.phone = $1", phone
    )
    assert grants == [("staff", live.station_id("和平苑"))]


def test_member_asks_leave_staff_approves_and_closing_spares_them(
    live: Live, browser: Browser, second_browser: Browser
) -> None:
    member = live.activated_member("请假党员")
    branch = live.org_id("幸福里第一党支部")
    with api_login(live, STAFF_A) as staff:
        starts = datetime.now().astimezone() + timedelta(hours=2)
        activity = staff.post("/api/v1/activities", json={
            "type": "branch_meeting", "title": "支部党员大会：请假测试", "station_id": live.station_id("幸福里"),
            "org_id": branch, "required": True,
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
        }).raise_for_status().json()

    phone = second_browser.launch()
    login(phone, member)
    wait_offline_ready(phone)
    phone.goto(f"/activities/{activity['id']}")
    phone.locator("[data-test=ask-leave]").click()
    phone.locator("[data-test=leave-reason] textarea").fill("在外地照顾老人")
    phone.locator(".van-dialog__confirm").click()
    phone.locator("[data-test=leave-status]").wait_for()
    assert "等待审批" in phone.locator("[data-test=leave-status]").inner_text()

    page = browser.launch()
    staff_login(page)
    page.goto("/staff/review")
    card = page.locator("[data-test=leave-item]", has_text="请假党员")
    card.wait_for()
    assert "在外地照顾老人" in card.inner_text()
    card.locator("[data-test=approve-leave]").click()
    page.locator(".van-dialog__confirm").click()
    page.get_by_text("已批准请假").wait_for()

    page.goto(f"/staff/activities/{activity['id']}")
    page.locator("[data-test=excused-count]").wait_for()
    page.wait_for_function("document.querySelector('[data-test=excused-count]').textContent === '1'", timeout=10_000)
    page.locator("[data-test=close-activity]").click()
    page.locator(".van-dialog__confirm").click()
    page.get_by_text("缺席扣分").wait_for()
    assert live.sql(
        "SELECT count(*) FROM points_ledger WHERE member_id = $1 AND source_type = 'absence' AND source_id = $2",
        member["id"], activity["id"],
    ) == [(0,)]
    penalised = live.sql("SELECT count(*) FROM points_ledger WHERE source_type = 'absence' AND source_id = $1", activity["id"])
    assert penalised[0][0] > 0  # the others who neither came nor asked

    phone.reload()
    phone.locator("[data-test=leave-status]").wait_for()
    assert "已批准" in phone.locator("[data-test=leave-status]").inner_text()
