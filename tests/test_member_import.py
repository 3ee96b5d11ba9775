"""党员导入 (/members/import): dry run with row-level Chinese errors, all-or-nothing real imports (csv and
xlsx, multipart and raw bodies) that create members and their not-yet-activated logins like POST
/members does, limits (413), scopes, and the template."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook, load_workbook

from server.members.importer import COLUMNS, ID_CHECK, ID_WEIGHTS, MAX_BYTES, MAX_ROWS
from tests.conftest import World, has_chinese

URL = "/api/v1/members/import"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EVIL = "=cmd|' /C calc'!A0"


def id_card(first17: str) -> str:
    return first17 + ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


GOOD_ID = id_card("11010519491231002")
HEADER = ["姓名", "手机号", "所在支部", "党员类型", "入党日期", "转正日期", "性别", "出生日期", "身份证号", "标签"]


def to_csv(rows: list[list[Any]], encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def to_xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    ws = book.active
    ws.title = "党员信息"
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def _count(world: World) -> tuple[int, int]:
    return await world.count("SELECT COUNT(*) FROM members"), await world.count("SELECT COUNT(*) FROM users")


async def test_dry_run_reports_every_bad_cell_with_sheet_row_numbers(world: World) -> None:
    secretary = await world.secretary()  # 幸福里第一党支部 and its 第一党小组
    rows = [
        HEADER,
        ["张三", "13711110001", "幸福里第一党支部", "正式", "2001-07-01", "2002-07-01", "男", "1970-05-04", GOOD_ID, "老党员、志愿者"],
        ["", "13711110002", "幸福里第一党支部"],  # row 3: no name
        ["李四", "1371111", "幸福里第一党支部"],  # row 4: bad phone
        ["王五", "13711110001", "第一党小组"],  # row 5: same phone as row 2
        ["赵六", "13900000001", "幸福里第一党支部"],  # row 6: phone of an existing member
        [],  # blank line: skipped, still counted in the numbering
        ["钱七", "13711110007", "不存在的支部"],  # row 8
        ["孙八", "13711110008", "和平苑第一党支部"],  # row 9: outside the secretary's subtree
        ["周九", "13711110009", "幸福里第一党支部", "积极分子", "2001-02-30", "", "未知"],  # row 10
        ["吴十", "13711110010", "幸福里第一党支部", "预备", "2010-01-01", "2009-01-01", "", "", GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")],
        ["郑一", "", ""],  # row 12
    ]
    before = await _count(world)
    answer = await secretary.post(URL, content=to_csv(rows), headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is False and body["dry_run"] is True and body["rows"] == 10 and body["created"] == 0
    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (3, "姓名"), (4, "手机号"), (5, "手机号"), (6, "手机号"), (8, "所在支部"), (9, "所在支部"),
        (10, "党员类型"), (10, "入党日期"), (10, "性别"), (11, "转正日期"), (11, "身份证号"), (12, "手机号"), (12, "所在支部"),
    ]
    assert body["error_count"] == 13
    messages = {(e["row"], e["column"]): e["message"] for e in body["errors"]}
    assert all(has_chinese(m) for m in messages.values())
    assert messages[(3, "姓名")] == "姓名不能为空"
    assert "格式不正确" in messages[(4, "手机号")]
    assert messages[(5, "手机号")] == "手机号与第 2 行重复"
    assert "已被" in messages[(6, "手机号")]
    assert "不存在的支部" in messages[(8, "所在支部")] and "和平苑第一党支部" in messages[(9, "所在支部")]
    assert messages[(10, "入党日期")] == "日期不存在，请检查年月日"
    assert "校验位" in messages[(11, "身份证号")]
    assert await _count(world) == before  # a dry run writes nothing

    missing = await secretary.post(URL, content=to_csv([["姓名", "电话"], ["张三", "13711110001"]]),
                                   headers={"content-type": "text/csv"})
    body = missing.json()
    assert missing.status_code == 200 and not body["ok"]
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(1, "手机号"), (1, "所在支部")]


async def test_one_bad_row_imports_nothing(world: World) -> None:
    secretary = await world.secretary()
    rows = [HEADER, ["张三", "13711110001", "幸福里第一党支部"], ["李四", "1371111", "幸福里第一党支部"]]
    before = await _count(world)
    answer = await secretary.post(f"{URL}?dry_run=false", content=to_xlsx(rows), headers={"content-type": XLSX})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "import_invalid" and has_chinese(body["detail"]) and body["created"] == 0
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(3, "手机号")]
    assert await _count(world) == before
    assert await world.count("SELECT COUNT(*) FROM users WHERE phone = '13711110001'") == 0


async def _check_created(world: World, phone: str, **expected: Any) -> int:
    row = await world.ctx.db.fetchrow(
        "SELECT m.id, m.name, m.org_id, m.member_type, m.join_date, m.full_date, m.gender, m.birth_date, m.id_card_last4,"
        " m.id_card_hash, m.tags, m.status, m.card_version, u.password_hash, u.is_active, u.display_name"
        " FROM members m JOIN users u ON u.member_id = m.id WHERE m.phone = $1", phone,
    )
    assert row is not None, phone
    got = dict(zip(["id", "name", "org_id", "member_type", "join_date", "full_date", "gender", "birth_date", "last4",
                    "hash", "tags", "status", "card_version", "password_hash", "is_active", "display_name"], row))
    tags = got["tags"]
    if isinstance(tags, str):
        import json

        got["tags"] = json.loads(tags)
    assert got["password_hash"] is None and got["is_active"] and got["display_name"] == got["name"]
    assert got["status"] == "normal" and got["card_version"] == 1
    for key, value in expected.items():
        assert (got[key] if key != "tags" else list(got["tags"])) == value, (key, got[key], value)
    tally = await world.count("SELECT COUNT(*) FROM points_tally WHERE member_id = $1", got["id"])
    assert tally >= 1  # ranked from day one like a member created by hand
    return int(got["id"])


async def test_good_imports_create_members_and_logins_from_csv_and_xlsx(world: World) -> None:
    from datetime import date

    from server.members.services import _id_card

    admin = await world.admin()
    branch = int(await world.ctx.db.fetchval("SELECT id FROM orgs WHERE name = '幸福里第一党支部'"))
    group = int(await world.ctx.db.fetchval("SELECT id FROM orgs WHERE name = '第一党小组'"))
    csv_rows = [
        ["标签", "姓名", "手机号*", "所在支部（必填）", "党员类型", "入党日期", "转正日期", "性别", "出生日期", "身份证号", "备注"],
        ["老党员、志愿者", "张三", "137-1111-0001", "幸福里第一党支部", "正式党员", "2001/7/1", "2002年7月1日", "男", "19700504",
         GOOD_ID.lower(), "备注列被忽略"],
        ["", EVIL, "+8613711110002", str(group), "预备", "", "", "女", "", "", ""],
    ]
    # multipart, GBK-encoded (as Excel in Chinese saves csv)
    answer = await admin.post(f"{URL}?dry_run=true", files={"file": ("党员.csv", to_csv(csv_rows, "gb18030"), "text/csv")})
    assert answer.status_code == 200 and answer.json() == {
        "ok": True, "dry_run": True, "rows": 2, "created": 0, "error_count": 0, "errors": []}
    answer = await admin.post(f"{URL}?dry_run=false", files={"file": ("党员.csv", to_csv(csv_rows, "gb18030"), "text/csv")})
    assert answer.status_code == 201, answer.text
    assert answer.json()["created"] == 2 and answer.json()["ok"] is True
    first = await _check_created(
        world, "13711110001", name="张三", org_id=branch, member_type="formal", join_date=date(2001, 7, 1),
        full_date=date(2002, 7, 1), gender="male", birth_date=date(1970, 5, 4), last4=GOOD_ID[-4:],
        hash=_id_card(world.ctx, GOOD_ID)[0], tags=["老党员", "志愿者"],
    )
    await _check_created(world, "13711110002", name=EVIL, org_id=group, member_type="probationary", gender="female",
                         join_date=None, last4=None, tags=[])
    shown = (await admin.get(f"/api/v1/members/{first}")).json()
    assert shown["activated"] is False and shown["org_name"] == "幸福里第一党支部"
    invite = await admin.post(f"/api/v1/members/{first}/invite")
    assert invite.status_code == 201  # the login exists and can be activated

    # xlsx, raw body: real dates and a number-typed phone; the same phone again is now "taken"
    xlsx_rows = [HEADER, ["李四", 13711110003, branch, "正式", date(1999, 7, 1), None, "男", date(1960, 1, 2), None, "在职"]]
    answer = await admin.post(f"{URL}?dry_run=false", content=to_xlsx(xlsx_rows), headers={"content-type": XLSX})
    assert answer.status_code == 201, answer.text
    await _check_created(world, "13711110003", name="李四", org_id=branch, join_date=date(1999, 7, 1),
                         birth_date=date(1960, 1, 2), tags=["在职"])
    again = await admin.post(f"{URL}?dry_run=false", content=to_xlsx(xlsx_rows), headers={"content-type": XLSX})
    assert again.status_code == 422 and again.json()["errors"][0]["row"] == 2


async def test_limits_scopes_and_bad_files(world: World) -> None:
    admin = await world.admin()
    big = b"\xe5\xa7\x93\xe5\x90\x8d," + b"x" * MAX_BYTES
    answer = await admin.post(URL, content=big, headers={"content-type": "text/csv"})
    assert answer.status_code == 413 and answer.json()["code"] == "file_too_large" and "5 MiB" in answer.json()["detail"]
    answer = await admin.post(URL, files={"file": ("big.csv", big, "text/csv")})
    assert answer.status_code == 413 and answer.json()["code"] == "file_too_large"
    many = to_csv([HEADER] + [["张三", f"137{i:08d}", "幸福里第一党支部"] for i in range(MAX_ROWS + 1)])
    assert len(many) < MAX_BYTES
    answer = await admin.post(URL, content=many, headers={"content-type": "text/csv"})
    assert answer.status_code == 413 and answer.json()["code"] == "too_many_rows" and has_chinese(answer.json()["detail"])

    for api in (await world.member(1), await world.staff_a()):
        answer = await api.post(URL, content=to_csv([HEADER]), headers={"content-type": "text/csv"})
        assert answer.status_code == 403 and has_chinese(answer.json()["detail"])
        assert (await api.get(f"{URL}/template.xlsx")).status_code == 403
    assert (await world.anon.post(URL, content=b"x", headers={"content-type": "text/csv"})).status_code == 401

    answer = await admin.post(URL, json={"file": "x"})
    assert answer.status_code == 415 and has_chinese(answer.json()["detail"])
    answer = await admin.post(URL, files={"other": ("a.csv", b"a", "text/csv")})
    assert answer.status_code == 400 and answer.json()["code"] == "file_missing"
    answer = await admin.post(URL, content=b"PK\x03\x04not really a zip", headers={"content-type": XLSX})
    assert answer.status_code == 400 and answer.json()["code"] == "bad_file"
    answer = await admin.post(URL, content=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, headers={"content-type": XLSX})
    assert answer.status_code == 400 and answer.json()["code"] == "unsupported_file"
    answer = await admin.post(URL, content=b"", headers={"content-type": "text/csv"})
    assert answer.status_code == 400 and answer.json()["code"] == "empty_file"
    answer = await admin.post(URL, content=to_csv([HEADER]), headers={"content-type": "text/csv"})
    assert answer.status_code == 200 and answer.json()["errors"][0]["row"] == 2


async def test_template_lists_my_orgs(world: World) -> None:
    secretary = await world.secretary()
    answer = await secretary.get(f"{URL}/template.xlsx")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(XLSX)
    assert "filename*=UTF-8''" in answer.headers["content-disposition"]
    book = load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == ["党员信息", "填写说明", "组织列表"]
    assert [c.value for c in book["党员信息"][1]] == COLUMNS
    assert book["党员信息"].max_row == 1  # no sample rows that could be imported by mistake
    orgs = [tuple(r) for r in book["组织列表"].iter_rows(min_row=2, values_only=True)]
    assert [o[1] for o in orgs] == ["幸福里第一党支部", "第一党小组"]
    assert orgs[0][2] == "党支部" and orgs[1][2] == "党小组"
    # The template itself, filled in, imports.
    ws = book["党员信息"]
    ws.append(["张三", "13711110001", "幸福里第一党支部"])
    buffer = io.BytesIO()
    book.save(buffer)
    answer = await secretary.post(URL, content=buffer.getvalue(), headers={"content-type": XLSX})
    assert answer.status_code == 200 and answer.json()["ok"] is True and answer.json()["rows"] == 1
