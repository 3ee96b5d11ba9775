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
