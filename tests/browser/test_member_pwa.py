"""The member PWA in real Chromium: scan with a fake camera, offline outbox and sync, deep links,
closed windows, activation, large-font mode, installability and the update prompt."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from tests.browser.conftest import (
    MEMBER_PASSWORD,
    Browser,
    Live,
    forged_token,
    login,
    qr_png,
    screenshot,
    wait_offline_ready,
    wait_queued,
    y4m_from_png,
)


def accepted_rows(live: Live, member_id: int) -> list[tuple]:
    return live.sql("SELECT activity_id, status FROM checkins WHERE member_id = $1 AND status = 'accepted'", member_id)


def headline(page) -> str:
    return page.locator("[data-test=scan-headline]").inner_text()


def test_online_scan_with_fake_camera_awards_points_once(live: Live, browser: Browser, tmp_path: Path) -> None:
    station = live.new_station()
    activity = live.new_activity(station["id"], title="主题党日：在线扫码")
    member = live.activated_member("在线党员")
    camera = y4m_from_png(live.activity_qr_png(activity["id"]), tmp_path / "activity.y4m")

    page = browser.launch(camera)
    login(page, member)
    page.locator("[data-test=open-scanner]").click()
    page.wait_for_function(
        "document.querySelector('[data-test=scan-headline]')?.textContent.includes('签到成功')", timeout=20_000
    )
    text = headline(page)
    assert re.search(r"签到成功\s*\+\d+(\.\d+)?分", text), text
    awarded = float(re.search(r"\+(\d+(?:\.\d+)?)分", text).group(1))
    screenshot(page, live, "scan-success")

    metrics = page.evaluate("window.__hongyiMetrics")
    assert metrics["engine"] in ("zxing", "native") and metrics["decodeMs"], metrics
    assert metrics["feedbackMs"], metrics

    page.goto("/points")
    page.locator("[data-test=points-total]").wait_for()
    mine = live.as_member(member).get("/api/v1/me/points").json()
    assert mine["earned"] == awarded
    assert page.locator("[data-test=points-total]").inner_text() == f"{mine['total']:g}"
    assert "排名第" in page.locator("[data-test=points-rank]").inner_text()
    screenshot(page, live, "points")

    rows = live.sql("SELECT status, method FROM checkins WHERE member_id = $1", member["id"])
    assert rows == [("accepted", "self")]


def test_offline_scans_queue_survive_reload_and_sync_once(live: Live, browser: Browser, tmp_path: Path) -> None:
    poster_station = live.new_station()
    poster_activity = live.new_activity(poster_station["id"], title="志愿服务：离线海报", activity_type="volunteer")
    other_station = live.new_station()
    code_activity = live.new_activity(other_station["id"], title="主题党日：离线活动码")
    member = live.activated_member("离线党员")
    poster_cam = y4m_from_png(live.poster_png(poster_station["id"]), tmp_path / "poster.y4m")
    code_cam = y4m_from_png(live.activity_qr_png(code_activity["id"]), tmp_path / "code.y4m")
    forged = forged_token(live.activity_token(code_activity["id"]))
    forged_cam = y4m_from_png(qr_png(f"{live.base_url}/q/{forged}"), tmp_path / "forged.y4m")

    page = browser.launch(poster_cam)
    login(page, member)
    wait_offline_ready(page)
    page.reload()
    wait_offline_ready(page)

    # Offline from here: the app itself comes from the service worker.
    browser.context.set_offline(True)
    response = page.reload()
    assert response is not None and response.from_service_worker
    page.locator("[data-test=open-scanner]").click()
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('联网后自动同步')")
    assert "志愿服务：离线海报" in page.locator("[data-test=scan-detail]").inner_text()
    screenshot(page, live, "scan-queued-offline")

    for camera in (code_cam, forged_cam):
        page = browser.launch(camera, offline=True)
        response = page.goto("/scan")
        assert response is not None and response.from_service_worker
        page.locator("[data-test=scan-result]").wait_for()
    assert "无法签到" in headline(page)
    assert "伪造" in page.locator("[data-test=scan-detail]").inner_text()

    page.goto("/")
    wait_queued(page, 2)
    assert "2 条签到待同步" in page.locator("[data-test=queued-count]").inner_text()
    page.reload()  # still offline: the queue is in IndexedDB
    wait_queued(page, 2)
    assert accepted_rows(live, member["id"]) == []
    screenshot(page, live, "home-offline-queued")

    browser.context.set_offline(False)  # the online event flushes the outbox
    wait_queued(page, 0, timeout=20_000)
    page.goto("/records")
    items = page.locator("[data-test=local-item]")
    items.first.wait_for()
    assert sorted(items.evaluate_all("els => els.map(e => e.dataset.status)")) == ["accepted", "accepted"]
    assert page.get_by_text(re.compile(r"成功 \+\d")).count() == 2
    screenshot(page, live, "records")

    rows = accepted_rows(live, member["id"])
    assert sorted(r[0] for r in rows) == sorted([poster_activity["id"], code_activity["id"]])
    assert live.sql("SELECT count(*) FROM checkin_attempts WHERE member_id = $1", member["id"]) == [(2,)]

    # Points and records seen online stay readable offline.
    page.goto("/points")
    total = page.locator("[data-test=points-total]")
    total.wait_for()
    online_total = total.inner_text()
    page.goto("/records")
    page.get_by_text("服务器记录").wait_for()
    page.locator(".van-cell", has_text="离线活动码").nth(1).wait_for()
    browser.context.set_offline(True)
    page.goto("/points")
    page.get_by_text("离线，显示上次结果").wait_for()
    assert page.locator("[data-test=points-total]").inner_text() == online_total
    page.goto("/records")
    page.get_by_text("服务器记录（离线，显示上次结果）").wait_for()
    assert page.locator(".van-cell", has_text="离线活动码").count() == 2  # this phone's item and the server's


def test_deep_link_online_offline_and_through_login(live: Live, browser: Browser) -> None:
    station = live.new_station()
    first = live.new_activity(station["id"], title="三会一课：深链在线")
    second_station = live.new_station()
    second = live.new_activity(second_station["id"], title="三会一课：深链离线")
    member = live.activated_member("深链党员")

    page = browser.launch()
    # Not logged in: the link goes through login and then checks in.
    page.goto(f"/q/{live.activity_token(first['id'])}")
    page.get_by_placeholder("请输入手机号").fill(member["phone"])
    page.get_by_placeholder("请输入密码").fill(MEMBER_PASSWORD)
    page.locator("[data-test=login-submit]").click()
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('签到成功')")
    wait_offline_ready(page)

    browser.context.set_offline(True)
    response = page.goto(f"/q/{live.activity_token(second['id'])}")
    assert response is not None and response.from_service_worker
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('联网后自动同步')")
    browser.context.set_offline(False)
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('签到成功')", timeout=20_000)
    assert sorted(r[0] for r in accepted_rows(live, member["id"])) == sorted([first["id"], second["id"]])


def test_closed_window_is_refused_offline_and_rejected_online_for_the_same_reason(live: Live, browser: Browser) -> None:
    station = live.new_station()
    closed = live.new_activity(station["id"], start=timedelta(hours=-5), hours=2, title="已结束的活动")
    token = live.activity_token(closed["id"])
    member = live.activated_member("迟到党员")

    page = browser.launch()
    login(page, member)
    wait_offline_ready(page)
    browser.context.set_offline(True)
    page.goto(f"/q/{token}")
    page.locator("[data-test=scan-result]").wait_for()
    offline_reason = page.locator("[data-test=scan-detail]").inner_text()
    assert "无法签到" in headline(page)

    browser.context.set_offline(False)
    page.goto(f"/q/{token}")
    page.locator("[data-test=scan-result]").wait_for()
    assert page.locator("[data-test=scan-detail]").inner_text() == offline_reason

    # The server, asked directly, gives the same reason.
    with live.as_member(member) as client:
        answer = client.post("/api/v1/checkins", json={
            "client_uuid": "closed-window-0001", "token": token, "scanned_at": __import__("datetime").datetime.now().astimezone().isoformat(),
        })
    assert answer.status_code == 422
    assert answer.json()["reason"] == "expired"
    assert answer.json()["message"] == offline_reason == "不在签到时间内"
    assert accepted_rows(live, member["id"]) == []


def test_activation_large_font_card_and_installability(live: Live, browser: Browser) -> None:
    member = live.new_member("激活党员")
    page = browser.launch()
    page.goto(member["invite_url"].replace(live.base_url, ""))
    page.get_by_placeholder("至少 8 位").fill(MEMBER_PASSWORD)
    page.get_by_placeholder("再输入一次").fill(MEMBER_PASSWORD)
    page.get_by_role("button", name="激活并登录").click()
    page.locator("[data-test=open-scanner]").wait_for()
    assert "激活党员" in page.locator(".hero").inner_text()
    screenshot(page, live, "home")

    # Tap targets: every button and tab on the home page is at least 44 px high.
    heights = page.locator("button, .van-tabbar-item").evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44, heights
    # Nothing overflows a 360 px wide screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.goto("/me")
    page.locator("[data-test=large-font]").click()
    page.reload()
    assert page.evaluate("document.documentElement.classList.contains('large-font')")
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 20
    screenshot(page, live, "me-large-font")

    page.goto("/card")
    page.locator("[data-test=member-card]").wait_for()
    assert page.locator("[data-test=member-card]").evaluate("img => img.naturalWidth") > 0
    screenshot(page, live, "card")

    page.goto("/pairings")
    page.get_by_text("暂无结对，请联系支部书记安排").wait_for()

    cdp = browser.context.new_cdp_session(page)
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == [], errors
    manifest = page.request.get("/manifest.webmanifest").json()
    assert manifest["name"].startswith("红驿") and manifest["lang"] == "zh-CN" and manifest["theme_color"]


def test_new_version_prompt_reloads_into_it(live: Live, browser: Browser) -> None:
    member = live.activated_member("更新党员")
    page = browser.launch()
    login(page, member)
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    old = page.evaluate("navigator.serviceWorker.controller.scriptURL")

    sw = live.dist / "sw.js"
    original = sw.read_text()
    try:
        sw.write_text(original + "\n// a new release\n")
        page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.update())")
        bar = page.locator("[data-test=update-bar]")
        bar.wait_for(timeout=20_000)
        assert "新版本可用" in bar.inner_text()
        with page.expect_navigation():
            bar.click()
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        active = page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.waiting === null && r.active.state)")
        assert active == "activated"
        assert page.locator("[data-test=update-bar]").count() == 0
        assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == old
    finally:
        sw.write_text(original)


SPOIL_SESSION = """async () => {
    const db = await new Promise((ok, bad) => { const r = indexedDB.open('hongyi'); r.onsuccess = () => ok(r.result); r.onerror = bad })
    await new Promise((ok, bad) => {
        const store = db.transaction('kv', 'readwrite').objectStore('kv')
        const get = store.get('session')
        get.onsuccess = () => {
            const s = get.result
            s.access_token = 'x.y.z'; s.refresh_token = 'revoked-long-ago'
            const put = store.put(s, 'session'); put.onsuccess = ok; put.onerror = bad
        }
    })
    db.close()
}"""


def test_expired_session_and_logout_never_lose_queued_checkins(live: Live, browser: Browser) -> None:
    station = live.new_station()
    first = live.new_activity(station["id"], title="组织生活会：会话过期")
    other = live.new_station()
    second = live.new_activity(other["id"], title="组织生活会：退出再登录")
    member = live.activated_member("过期党员")

    page = browser.launch()
    login(page, member)
    wait_offline_ready(page)

    # 1. Offline scan, then the session dies (refresh token no longer valid) before the sync.
    browser.context.set_offline(True)
    page.goto(f"/q/{live.activity_token(first['id'])}")
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('联网后自动同步')")
    page.evaluate(SPOIL_SESSION)
    page.goto("/")
    browser.context.set_offline(False)
    page.locator("[data-test=session-expired]").wait_for(timeout=20_000)
    wait_queued(page, 1)
    assert accepted_rows(live, member["id"]) == []
    page.locator("[data-test=session-expired]").click()
    page.get_by_placeholder("请输入密码").fill(MEMBER_PASSWORD)
    page.locator("[data-test=login-submit]").click()
    page.locator("[data-test=open-scanner]").wait_for()  # back where the member was
    wait_queued(page, 0, timeout=20_000)
    assert [r[0] for r in accepted_rows(live, member["id"])] == [first["id"]]

    # 2. Offline scan, log out (still offline), log back in online: the scan is sent then.
    browser.context.set_offline(True)
    page.goto(f"/q/{live.activity_token(second['id'])}")
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('联网后自动同步')")
    page.goto("/me")
    page.locator("[data-test=logout]").click()
    assert "1 条签到未同步" in page.locator(".van-dialog").inner_text()
    page.locator(".van-dialog__confirm").click()
    page.get_by_placeholder("请输入密码").wait_for()
    browser.context.set_offline(False)
    login(page, member)
    wait_queued(page, 0, timeout=20_000)
    assert sorted(r[0] for r in accepted_rows(live, member["id"])) == sorted([first["id"], second["id"]])
    assert live.sql("SELECT count(*) FROM checkin_attempts WHERE member_id = $1", member["id"]) == [(2,)]


def test_poster_with_two_open_activities_lets_the_member_pick_and_photo_fallback(live: Live, browser: Browser, tmp_path: Path) -> None:
    station = live.new_station()
    live.new_activity(station["id"], title="志愿服务：清扫楼道", activity_type="volunteer")
    chosen = live.new_activity(station["id"], title="三会一课：党课", start=timedelta(minutes=-10))
    photo_station = live.new_station()
    photo_activity = live.new_activity(photo_station["id"], title="主题党日：拍照识别")
    member = live.activated_member("选择党员")
    outside: list[str] = []

    page = browser.launch()
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((live.base_url, "data:", "blob:")) else None)
    login(page, member)
    wait_offline_ready(page)

    token = live.admin.get(f"/api/v1/stations/{station['id']}/poster", params={"format": "json"}).json()["token"]
    page.goto(f"/q/{token}")
    sheet = page.locator(".van-action-sheet")
    sheet.wait_for()
    assert "此时有多个活动" in sheet.inner_text()
    page.locator(".van-action-sheet__item", has_text="三会一课：党课").click()
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('签到成功')", timeout=20_000)
    assert [r[0] for r in accepted_rows(live, member["id"])] == [chosen["id"]]

    # 拍照识别: a photo of an activity code, decoded by zxing-wasm served from our own origin.
    photo = tmp_path / "photo.png"
    photo.write_bytes(live.activity_qr_png(photo_activity["id"]))
    page.goto("/scan")
    page.locator("[data-test=photo-input]").set_input_files(str(photo))
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('签到成功')", timeout=20_000)
    assert sorted(r[0] for r in accepted_rows(live, member["id"])) == sorted([chosen["id"], photo_activity["id"]])
    assert outside == []  # no CDN: fonts, wasm and keys all come from the server



def test_background_sync_sends_the_outbox_with_no_page_open(live: Live, browser: Browser) -> None:
    import time

    station = live.new_station()
    activity = live.new_activity(station["id"], title="志愿服务：后台同步", activity_type="volunteer")
    member = live.activated_member("后台党员")

    page = browser.launch()
    login(page, member)
    wait_offline_ready(page)
    browser.context.set_offline(True)
    page.goto(f"/q/{live.activity_token(activity['id'])}")
    page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('联网后自动同步')")
    # The page asked for a Background Sync while offline.
    page.wait_for_function("navigator.serviceWorker.ready.then(r => r.sync.getTags()).then(tags => tags.includes('hongyi-outbox'))")

    # Leave the app (no page can flush now), come back online, and let the browser fire the sync
    # (dispatched through DevTools: the emulated network does not drive Chromium's sync scheduler).
    cdp = browser.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    page.goto("about:blank")
    browser.context.set_offline(False)
    deadline = time.monotonic() + 10
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    registration = next(r for r in registrations if r["scopeURL"].startswith(live.base_url) and not r["isDeleted"])
    assert accepted_rows(live, member["id"]) == []
    cdp.send("ServiceWorker.dispatchSyncEvent", {
        "origin": live.base_url, "registrationId": registration["registrationId"], "tag": "hongyi-outbox", "lastChance": False,
    })
    deadline = time.monotonic() + 20
    while not accepted_rows(live, member["id"]) and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert [r[0] for r in accepted_rows(live, member["id"])] == [activity["id"]]

    # Back in the app, the item shows the service worker's result and nothing is left to send.
    page.goto("/records")
    page.locator("[data-test=local-item][data-status=accepted]").wait_for()
    wait_queued_records = page.locator("[data-test=local-item][data-status=queued]")
    assert wait_queued_records.count() == 0
    assert live.sql("SELECT count(*) FROM checkin_attempts WHERE member_id = $1", member["id"]) == [(1,)]
