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
