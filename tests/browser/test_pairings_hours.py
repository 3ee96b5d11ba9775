"""一帮一 and volunteer hours in the PWA: a secretary pairs a member; the member records a visit
offline and it syncs once; the visit is verified for a point; staff complete a forgotten check-out
and the member sees the hours."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.browser.conftest import STAFF_A, Browser, Live, api_login, login, screenshot, staff_login, wait_offline_ready, wait_queued

SECRETARY = {"phone": "13800000003", "password": "hongyi-secretary"}


def test_pairing_visit_recorded_offline_syncs_once_and_is_verified(live: Live, browser: Browser, second_browser: Browser) -> None:
    member = live.activated_member("结对党员")
    desk = browser.launch()
    staff_login(desk, SECRETARY)
    desk.goto("/staff/pairings")
    desk.locator("[data-test=new-pairing]").click()
    dialog = desk.locator(".van-dialog")
    dialog.get_by_placeholder("查找帮扶党员（姓名或手机号）").fill("结对党员")
    dialog.get_by_placeholder("查找帮扶党员（姓名或手机号）").press("Enter")
    dialog.locator(".van-cell", has_text="结对党员").first.click()
    dialog.locator("[data-test=pairing-name] input").fill("李奶奶")
    dialog.get_by_placeholder("如：独居老人").fill("独居老人")
    dialog.locator(".van-dialog__confirm").click()
    desk.get_by_text("结对党员 → 李奶奶").wait_for()
    pairing_id = live.sql("SELECT id FROM pairings WHERE member_id = $1", member["id"])[0][0]

    phone = second_browser.launch()
    login(phone, member)
    wait_offline_ready(phone)
    phone.goto("/pairings")
    phone.locator("[data-test=pairings] .van-cell", has_text="李奶奶").click()
    phone.locator("[data-test=visit-content] textarea").wait_for()
    second_browser.context.set_offline(True)
    phone.locator("[data-test=visit-content] textarea").fill("上门看望，帮助买菜，身体状况良好")
    phone.locator("[data-test=visit-problems] textarea").fill("独居，上下楼困难")
    phone.locator("[data-test=visit-outcome] textarea").fill("已联系社区助餐")
    phone.locator("[data-test=save-visit]").click()
    phone.locator("[data-test=visit-queued]").wait_for()
    screenshot(phone, live, "pairing-visit-offline")
    phone.goto("/")
    wait_queued(phone, 1)
    assert live.sql("SELECT count(*) FROM pairing_visits WHERE pairing_id = $1", pairing_id) == [(0,)]

    second_browser.context.set_offline(False)  # the online event sends it
    wait_queued(phone, 0, timeout=20_000)
    phone.goto(f"/pairings/{pairing_id}")
    phone.locator("[data-test=visit][data-status=pending]").wait_for()
    assert live.sql("SELECT count(*) FROM pairing_visits WHERE pairing_id = $1", pairing_id) == [(1,)]
    assert live.sql("SELECT problems, outcome FROM pairing_visits WHERE pairing_id = $1", pairing_id) == [
        ("独居，上下楼困难", "已联系社区助餐")]

    desk.goto("/staff/review")
    item = desk.locator("[data-test=visit-item]", has_text="李奶奶")
    item.wait_for()
    assert "问题：独居，上下楼困难" in item.inner_text() and "成效：已联系社区助餐" in item.inner_text()
    item.locator("[data-test=verify-visit]").click()
    desk.locator("[data-test=visit-item]", has_text="李奶奶").wait_for(state="detached")
    assert live.sql("SELECT status FROM pairing_visits WHERE pairing_id = $1", pairing_id) == [("approved",)]
    assert live.sql(
        "SELECT sum(delta) FROM points_ledger WHERE member_id = $1 AND source_type = 'visit'", member["id"]
    ) == [(1.0,)]
    phone.reload()
    phone.locator("[data-test=visit][data-status=approved]").wait_for()


def test_staff_complete_a_forgotten_check_out_and_the_member_sees_hours(live: Live, browser: Browser, second_browser: Browser) -> None:
    member = live.activated_member("时长党员")
    with api_login(live, STAFF_A) as staff:
        starts = datetime.now().astimezone() - timedelta(hours=3)
        activity = staff.post("/api/v1/activities", json={
            "type": "volunteer", "title": "志愿服务：补签退", "station_id": live.station_id("幸福里"), "records_hours": True,
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2, minutes=40)).isoformat(),
        }).raise_for_status().json()
        token = staff.get(f"/api/v1/activities/{activity['id']}/qr").json()["token"]
    with live.as_member(member) as client:
        checkin = client.post("/api/v1/checkins", json={
            "client_uuid": "hours-in-000001", "token": token, "scanned_at": (starts + timedelta(minutes=5)).isoformat(),
        })
        assert checkin.status_code == 200 and checkin.json()["status"] == "accepted", checkin.text

    page = browser.launch()
    staff_login(page)
    page.goto(f"/staff/activities/{activity['id']}")
    page.locator(f"[data-test=complete-{member['id']}]").click()
    page.locator(".van-dialog__confirm").click()
    page.get_by_text("已补签退").wait_for()
    rows = live.sql("SELECT hours, status FROM volunteer_hours WHERE member_id = $1", member["id"])
    assert rows == [(2.5, "approved")]  # 2 h 35 min (check-in to the end of the schedule), rounded down to 0.5 h

    phone = second_browser.launch()
    login(phone, member)
    phone.goto("/hours")
    phone.locator("[data-test=hours-total]").wait_for()
    assert phone.locator("[data-test=hours-total]").inner_text() == "2.5"
    screenshot(phone, live, "my-hours")
