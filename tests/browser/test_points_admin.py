"""积分制管理 in the PWA: an admin edits a rule (a new version, history kept); a secretary rewards
and deducts by hand with a reason."""

from __future__ import annotations

from tests.browser.conftest import Browser, Live, screenshot_both, staff_login

ADMIN = {"phone": "13800000000", "password": "hongyi-admin"}
SECRETARY = {"phone": "13800000003", "password": "hongyi-secretary"}


def test_admin_edits_a_rule_into_a_new_version(live: Live, browser: Browser) -> None:
    before = live.sql("SELECT max(version) FROM point_rules WHERE code = 'attend_theme_day'")[0][0]
    page = browser.launch()
    staff_login(page, ADMIN)
    page.goto("/staff/rules")
    page.locator("[data-test=rules] .van-cell").first.wait_for()
    screenshot_both(page, live, "staff-rules")
    page.locator("[data-test=rules] .van-cell", has_text="主题党日").first.click()
    dialog = page.locator(".van-dialog")
    dialog.locator("[data-test=rule-points] input").fill("2")
    dialog.locator(".van-dialog__confirm").click()
    page.get_by_text("已保存为新版本").wait_for()
    rows = live.sql("SELECT version, points FROM point_rules WHERE code = 'attend_theme_day' ORDER BY version")
    assert rows[-1][0] == before + 1 and float(rows[-1][1]) == 2.0


def test_secretary_rewards_and_deducts_with_a_reason(live: Live, browser: Browser) -> None:
    member = live.activated_member("奖惩党员")
    page = browser.launch()
    staff_login(page, SECRETARY)
    page.goto("/staff/adjust")
    page.locator("[data-test=adjust-search] input").fill("奖惩党员")
    page.locator("[data-test=adjust-search] input").press("Enter")
    page.locator(".van-cell", has_text="奖惩党员").first.click()
    page.locator("[data-test=adjust-amount] input").fill("3")
    page.locator("[data-test=adjust-reason] textarea").fill("社区防汛表现突出")
    page.locator("[data-test=adjust-submit]").click()
    page.get_by_text("已奖励 3 分").wait_for()
    page.get_by_text("党费逾期").click()
    page.locator("[data-test=adjust-amount] input").fill("1")
    page.locator("[data-test=adjust-reason] textarea").fill("党费逾期三个月")
    page.locator("[data-test=adjust-submit]").click()
    page.get_by_text("已扣除 1 分").wait_for()
    screenshot_both(page, live, "staff-adjust")
    rows = live.sql("SELECT delta, reason FROM points_ledger WHERE member_id = $1 ORDER BY id", member["id"])
    assert [(float(d), r) for d, r in rows] == [(3.0, "社区防汛表现突出"), (-1.0, "党费逾期三个月")]


def test_reports_download_from_the_panel(live: Live, browser: Browser, tmp_path) -> None:
    from openpyxl import load_workbook

    page = browser.launch()
    staff_login(page, SECRETARY)
    page.goto("/staff/reports")
    screenshot_both(page, live, "staff-reports")
    for report, sheet_hint in (("points", "积分"), ("attendance", "")):
        with page.expect_download() as download:
            page.locator(f"[data-test=report-{report}]").click()
        path = tmp_path / f"{report}.xlsx"
        download.value.save_as(path)
        assert download.value.suggested_filename.endswith(".xlsx")
        book = load_workbook(path, read_only=True)
        assert book.sheetnames and (not sheet_hint or any(sheet_hint in name for name in book.sheetnames)), book.sheetnames


def test_member_import_checks_rows_then_imports_all_or_nothing(live: Live, browser: Browser, tmp_path) -> None:
    import time as _time

    stamp = int(_time.time() * 1000) % 10**7
    bad = tmp_path / "bad.csv"
    bad.write_text(f"姓名,手机号,所在支部,党员类型\n导入甲,135{stamp:08d},幸福里第一党支部,正式\n导入乙,123,幸福里第一党支部,正式\n", encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text(f"姓名,手机号,所在支部,党员类型\n导入甲,135{stamp:08d},幸福里第一党支部,正式\n导入乙,135{stamp + 1:08d},幸福里第一党支部,预备\n", encoding="utf-8")

    page = browser.launch()
    staff_login(page, SECRETARY)
    page.goto("/staff/import")
    page.locator("[data-test=import-file]").set_input_files(str(bad))
    page.locator("[data-test=import-check]").click()
    error = page.locator("[data-test=import-error]").first
    error.wait_for()
    assert "第 3 行" in error.inner_text() and "手机号" in error.inner_text()
    assert page.locator("[data-test=import-run]").is_disabled()
    screenshot_both(page, live, "staff-import")

    page.locator("[data-test=import-file]").set_input_files(str(good))
    page.locator("[data-test=import-check]").click()
    page.get_by_text("检查通过").wait_for()
    page.locator("[data-test=import-run]").click()
    page.get_by_text("已导入 2 名党员").first.wait_for()
    rows = live.sql("SELECT name, member_type FROM members WHERE name LIKE '导入%' ORDER BY name")
    assert sorted(rows) == sorted([("导入甲", "formal"), ("导入乙", "probationary")])


def test_branch_race_with_trend_and_member_leaderboard(live: Live, browser: Browser, second_browser: Browser) -> None:
    from tests.browser.conftest import login

    member = live.activated_member("排名党员")
    live.admin.post("/api/v1/points/adjustments", json={"member_id": member["id"], "delta": 5, "reason": "排行测试奖励"}).raise_for_status()

    page = browser.launch()
    staff_login(page, ADMIN)
    page.goto("/staff/race")
    rows = page.locator("[data-test=race] .van-cell")
    rows.first.wait_for()
    assert rows.count() >= 4
    assert set(page.locator("[data-test=band]").all_inner_texts()) <= {"先进", "中间", "后进"}
    assert page.locator("[data-test=trend-chart] path").count() >= 1
    assert "幸福里第一党支部" in page.locator("[data-test=race]").inner_text()
    screenshot_both(page, live, "staff-race")

    phone = second_browser.launch()
    login(phone, member)
    phone.goto("/rankings")
    board = phone.locator("[data-test=leaderboard]")
    board.wait_for()
    mine = board.locator(".van-cell", has_text="排名党员")
    assert "65" in mine.inner_text()  # base 60 + 5
