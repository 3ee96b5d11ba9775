"""党员批量导入 (``POST /members/import``) from an xlsx or csv sheet, and its template.

- Columns by their Chinese headers (first non-empty row; order free, unknown columns ignored):
  姓名, 手机号, 所在支部 (required); 党员类型 (正式/预备, default 正式), 入党日期, 转正日期, 性别 (男/女),
  出生日期, 身份证号, 标签 (separated by ，、; or spaces).
- 所在支部 is an org name inside the caller's admin/secretary subtrees, or an org id.
- Every problem is reported per cell: ``{row, column, message}`` with the row number as the sheet
  shows it (header = row 1 in the template), in Chinese.
- A real import is all or nothing: one write unit, the same rows as ``POST /members`` creates
  (``services.insert_member``): member, not-yet-activated login, zero tally row.
- Limits: 5 MiB per file, 10 000 data rows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, forbidden
from server.core.sql import Where, placeholders
from server.core.timeutil import utcnow
from server.members.schemas import ImportErrorOut, ImportOut, MemberIn

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
MAX_ERRORS = 1000  # returned; ``error_count`` has them all
MAX_COLUMNS = 50

COLUMNS = ["姓名", "手机号", "所在支部", "党员类型", "入党日期", "转正日期", "性别", "出生日期", "身份证号", "标签"]
REQUIRED = ("姓名", "手机号", "所在支部")
ALIASES = {
    "手机": "手机号", "手机号码": "手机号", "联系电话": "手机号", "所在党支部": "所在支部", "支部": "所在支部",
    "党组织": "所在支部", "所在党组织": "所在支部", "组织": "所在支部", "类型": "党员类型", "身份证": "身份证号",
    "身份证号码": "身份证号", "入党时间": "入党日期", "转正时间": "转正日期", "出生年月日": "出生日期", "出生年月": "出生日期",
}
MEMBER_TYPES = {"正式": "formal", "正式党员": "formal", "预备": "probationary", "预备党员": "probationary"}
GENDERS = {"男": "male", "男性": "male", "女": "female", "女性": "female"}
MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
TAG_SPLIT = re.compile(r"[,，、;；\s]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
EARLIEST = date(1900, 1, 1)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
CSV_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"}


def too_large() -> APIError:
    return APIError(413, "file_too_large", f"文件过大（上限 {MAX_BYTES // (1024 * 1024)} MiB）")


# ------------------------------------------------------------------------------------- reading files


def read_table(content: bytes) -> list[tuple[int, list[Any]]]:
    """(sheet row number, cells) of every row, header included; blank rows are left out."""
    if len(content) > MAX_BYTES:
        raise too_large()
    if content.startswith(b"PK\x03\x04"):
        return _read_xlsx(content)
    if content.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise APIError(400, "unsupported_file", "不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 .csv 后再上传")
    return _read_csv(content)


def _too_many() -> APIError:
    return APIError(413, "too_many_rows", f"数据行过多（上限 {MAX_ROWS} 行），请分批导入")


def _read_xlsx(content: bytes) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — any unreadable file is the client's problem
        raise APIError(400, "bad_file", "无法读取该 xlsx 文件，请确认文件未损坏") from exc
    try:
        ws = book["党员信息"] if "党员信息" in book.sheetnames else book.worksheets[0]
        rows: list[tuple[int, list[Any]]] = []
        for number, values in enumerate(ws.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1):
            cells = list(values)
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells):
                continue
            rows.append((number, cells))
            if len(rows) > MAX_ROWS + 1:
                raise _too_many()
        return rows
    except APIError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise APIError(400, "bad_file", "无法读取该 xlsx 文件，请确认文件未损坏") from exc
    finally:
        book.close()


def _read_csv(content: bytes) -> list[tuple[int, list[Any]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = content.decode("gb18030")  # what Excel in Chinese saves as "CSV"
        except UnicodeDecodeError:
            raise APIError(400, "bad_file", "无法识别文件编码，请保存为 UTF-8 或 GBK 编码的 csv，或上传 xlsx") from None
    if "\x00" in text:
        raise APIError(400, "bad_file", "文件不是有效的 csv 或 xlsx")
    rows: list[tuple[int, list[Any]]] = []
    try:
        for number, cells in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            if not any(c.strip() for c in cells):
                continue
            rows.append((number, cells[:MAX_COLUMNS]))
            if len(rows) > MAX_ROWS + 1:
                raise _too_many()
    except csv.Error as exc:
        raise APIError(400, "bad_file", "csv 文件格式不正确") from exc
    return rows


# ------------------------------------------------------------------------------------- checking rows


@dataclass
class Checked:
    rows: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    members: list[tuple[int, MemberIn, str]] = field(default_factory=list)  # (row, data, org path)

    def error(self, row: int, column: str, message: str) -> None:
        self.errors.append((row, column, message))


def _header_name(value: Any) -> str:
    text = re.sub(r"\s+", "", str(value or ""))
    text = re.sub(r"[（(](必填|选填|可选|必须)[)）]|\*", "", text)
    return ALIASES.get(text, text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _date(value: Any, today: date) -> tuple[date | None, str | None]:
    """(date, None) or (None, Chinese problem); blank is (None, None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        from openpyxl.utils.datetime import from_excel

        if float(value).is_integer() and 19000101 <= int(value) <= 21001231:
            return _date(str(int(value)), today)  # 20010701 typed as a number
        if not 1 <= value < 100_000:
            return None, "日期格式不正确，请填写如 2001-07-01"
        parsed = from_excel(value).date()  # an Excel day number in a cell not formatted as a date
    else:
        text = str(value).strip().split(" ")[0].split("T")[0]
        match = DATE_TEXT.match(text)
        if match is None and re.fullmatch(r"\d{8}", text):
            match = re.match(r"(\d{4})(\d{2})(\d{2})", text)
        if match is None:
            return None, "日期格式不正确，请填写如 2001-07-01"
        try:
            parsed = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            return None, "日期不存在，请检查年月日"
    if not (EARLIEST <= parsed <= today):
        return None, f"日期超出范围（{EARLIEST:%Y-%m-%d} 至今天）"
    return parsed, None


def _phone(value: Any) -> str | None:
    text = re.sub(r"[\s\-]", "", _text(value))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    return text if MOBILE.match(text) else None


def _id_card(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None, "身份证号被存成了数字（末位可能已丢失），请把该列设为文本后重新填写"
    text = _text(value).upper()
    if not text:
        return None, None
    if re.fullmatch(r"[0-9]{15}", text):
        return text, None
    if not re.fullmatch(r"[0-9]{17}[0-9X]", text):
        return None, "身份证号应为 18 位（末位可为 X）或 15 位数字"
    check = ID_CHECK[sum(int(d) * w for d, w in zip(text[:17], ID_WEIGHTS)) % 11]
    if text[17] != check:
        return None, "身份证号校验位不正确，请核对"
    return text, None


@dataclass
class Orgs:
    by_id: dict[int, tuple[str, str]]  # id → (name, path)
    by_name: dict[str, list[int]]

    def find(self, value: Any) -> tuple[int | None, str | None]:
        text = _text(value)
        if re.fullmatch(r"\d{1,12}", text):
            org_id = int(text)
            if org_id in self.by_id:
                return org_id, None
            if text not in self.by_name:
                return None, f"组织编号 {org_id} 不存在或不在您的管理范围内"
        ids = self.by_name.get(text, [])
        if not ids:
            return None, f"未找到名为“{text}”的组织（或不在您的管理范围内）"
        if len(ids) > 1:
            return None, f"有 {len(ids)} 个名为“{text}”的组织，请改填组织编号（见模板“组织列表”）"
        return ids[0], None


async def scope_orgs(ctx: Context, user: Principal) -> Orgs:
    where = Where().prefix_any("path", user.manager_paths)
    rows = await ctx.db.fetch(f"SELECT id, name, path FROM orgs WHERE {where.sql} ORDER BY path", *where.args)
    by_id = {int(r[0]): (str(r[1]), str(r[2])) for r in rows}
    by_name: dict[str, list[int]] = {}
    for org_id, (name, _) in by_id.items():
        by_name.setdefault(name.strip(), []).append(org_id)
    return Orgs(by_id, by_name)


async def existing_phones(ctx: Context, phones: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(phones), 500):
        chunk = phones[start:start + 500]
        marks = placeholders(len(chunk))
        for (phone,) in await ctx.db.fetch(
            f"SELECT phone FROM users WHERE phone IN ({marks}) UNION SELECT phone FROM members WHERE phone IN ({marks})",
            *chunk,
        ):
            found.add(str(phone))
    return found


async def check(ctx: Context, user: Principal, table: list[tuple[int, list[Any]]]) -> Checked:
    out = Checked()
    if not table:
        out.error(1, "", "文件是空的：第 1 行应为表头（姓名、手机号、所在支部……）")
        return out
    header_row, header_cells = table[0]
    columns: dict[str, int] = {}
    for index, cell in enumerate(header_cells):
        name = _header_name(cell)
        if name in COLUMNS and name not in columns:
            columns[name] = index
    for name in REQUIRED:
        if name not in columns:
            out.error(header_row, name, f"缺少必填列“{name}”")
    data_rows = table[1:]
    out.rows = len(data_rows)
    if out.errors:
        return out
    if not data_rows:
        out.error(header_row + 1, "", "没有需要导入的数据行")
        return out
    if len(data_rows) > MAX_ROWS:
        raise _too_many()
    orgs = await scope_orgs(ctx, user)
    today = utcnow().astimezone(ctx.settings.tz).date()
    seen_phones: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    parsed: list[tuple[int, dict[str, Any]]] = []

    def cell(cells: list[Any], name: str) -> Any:
        index = columns.get(name)
        return cells[index] if index is not None and index < len(cells) else None

    for row, cells in data_rows:
        before = len(out.errors)
        item: dict[str, Any] = {}
        name = CONTROL.sub("", _text(cell(cells, "姓名")))
        if not name:
            out.error(row, "姓名", "姓名不能为空")
        elif len(name) > 50:
            out.error(row, "姓名", "姓名不能超过 50 个字")
        item["name"] = name
        raw_phone = cell(cells, "手机号")
        phone = _phone(raw_phone)
        if not _text(raw_phone):
            out.error(row, "手机号", "手机号不能为空")
        elif phone is None:
            out.error(row, "手机号", f"手机号“{_text(raw_phone)[:20]}”格式不正确，应为 11 位手机号")
        elif phone in seen_phones:
            out.error(row, "手机号", f"手机号与第 {seen_phones[phone]} 行重复")
        else:
            seen_phones[phone] = row
        item["phone"] = phone
        raw_org = cell(cells, "所在支部")
        if not _text(raw_org):
            out.error(row, "所在支部", "所在支部不能为空")
        else:
            org_id, problem = orgs.find(raw_org)
            if problem:
                out.error(row, "所在支部", problem)
            item["org_id"] = org_id
        raw_type = _text(cell(cells, "党员类型"))
        if raw_type and raw_type not in MEMBER_TYPES:
            out.error(row, "党员类型", "党员类型应为“正式”或“预备”")
        item["member_type"] = MEMBER_TYPES.get(raw_type, "formal")
        raw_gender = _text(cell(cells, "性别"))
        if raw_gender and raw_gender not in GENDERS:
            out.error(row, "性别", "性别应为“男”或“女”")
        item["gender"] = GENDERS.get(raw_gender)
        for column, key in (("出生日期", "birth_date"), ("入党日期", "join_date"), ("转正日期", "full_date")):
            value, problem = _date(cell(cells, column), today)
            if problem:
                out.error(row, column, problem)
            item[key] = value
        if item["birth_date"] and item["join_date"] and item["join_date"] <= item["birth_date"]:
            out.error(row, "入党日期", "入党日期应晚于出生日期")
        if item["join_date"] and item["full_date"] and item["full_date"] < item["join_date"]:
            out.error(row, "转正日期", "转正日期不能早于入党日期")
        id_card, problem = _id_card(cell(cells, "身份证号"))
        if problem:
            out.error(row, "身份证号", problem)
        elif id_card:
            if id_card in seen_ids:
                out.error(row, "身份证号", f"身份证号与第 {seen_ids[id_card]} 行重复")
            seen_ids[id_card] = row
        item["id_card"] = id_card
        tags: list[str] = []
        for tag in TAG_SPLIT.split(_text(cell(cells, "标签"))):
            tag = CONTROL.sub("", tag)
            if tag and tag not in tags:
                tags.append(tag)
        if any(len(t) > 20 for t in tags):
            out.error(row, "标签", "每个标签不能超过 20 个字")
        elif len(tags) > 20:
            out.error(row, "标签", "标签不能超过 20 个")
        item["tags"] = tags
        if len(out.errors) == before:
            parsed.append((row, item))
    taken = await existing_phones(ctx, list(seen_phones))
    for phone in sorted(taken, key=lambda p: seen_phones[p]):
        out.error(seen_phones[phone], "手机号", "该手机号已被其他党员或账号使用")
    taken_rows = {seen_phones[p] for p in taken}
    for row, item in parsed:
        if row in taken_rows:
            continue
        data = MemberIn(
            name=item["name"], phone=item["phone"], org_id=item["org_id"], gender=item["gender"],
            birth_date=item["birth_date"], id_card=item["id_card"], join_date=item["join_date"],
            full_date=item["full_date"], member_type=item["member_type"], tags=item["tags"],
        )
        out.members.append((row, data, orgs.by_id[item["org_id"]][1]))
    out.errors.sort(key=lambda e: (e[0], COLUMNS.index(e[1]) if e[1] in COLUMNS else -1))
    return out


def _errors(checked: Checked) -> list[ImportErrorOut]:
    return [ImportErrorOut(row=r, column=c, message=m) for r, c, m in checked.errors[:MAX_ERRORS]]


class _RowFailed(Exception):
    def __init__(self, row: int, error: APIError) -> None:
        self.row, self.error = row, error


async def import_members(ctx: Context, user: Principal, content: bytes, *, dry_run: bool) -> ImportOut:
    require_manager(user)
    table = await asyncio.to_thread(read_table, content)
    checked = await check(ctx, user, table)
    if checked.errors:
        result = ImportOut(
            ok=False, dry_run=dry_run, rows=checked.rows, created=0, error_count=len(checked.errors),
            errors=_errors(checked),
        )
        if dry_run:
            return result
        raise APIError(
            422, "import_invalid", f"文件中有 {len(checked.errors)} 处错误，未导入任何党员，请修改后重新上传",
            extra={"ok": False, "dry_run": False, "rows": checked.rows, "created": 0,
                   "error_count": len(checked.errors), "errors": [
                       {"row": e.row, "column": e.column, "message": e.message} for e in result.errors]},
        )
    if dry_run:
        return ImportOut(ok=True, dry_run=True, rows=checked.rows, created=0, error_count=0, errors=[])
    from server.members.services import insert_member

    now = utcnow()
    try:
        async with ctx.db.transaction():
            for row, data, org_path in checked.members:
                try:
                    await insert_member(ctx, data, org_path, now)
                except APIError as exc:  # a phone taken since the check: nothing of this file is kept
                    raise _RowFailed(row, exc) from exc
    except _RowFailed as failed:
        errors = [{"row": failed.row, "column": "手机号" if failed.error.code == "phone_taken" else "",
                   "message": failed.error.detail}]
        raise APIError(
            422, "import_invalid", "导入过程中发现冲突，未导入任何党员，请修改后重新上传",
            extra={"ok": False, "dry_run": False, "rows": checked.rows, "created": 0, "error_count": 1, "errors": errors},
        ) from failed
    return ImportOut(ok=True, dry_run=False, rows=checked.rows, created=len(checked.members), error_count=0, errors=[])


def require_manager(user: Principal) -> None:
    if not user.manager_paths:
        raise forbidden("只有支部书记或管理员可以导入党员")


# ------------------------------------------------------------------------------------------ template


async def template(ctx: Context, user: Principal) -> bytes:
    require_manager(user)
    orgs = await scope_orgs(ctx, user)
    kinds = dict(await ctx.db.fetch(
        f"SELECT id, kind FROM orgs WHERE id IN ({placeholders(len(orgs.by_id))})", *orgs.by_id
    )) if orgs.by_id else {}
    return await asyncio.to_thread(_template, [(i, n, p, kinds.get(i, "")) for i, (n, p) in orgs.by_id.items()])


ORG_KINDS = {
    "street_committee": "街道党工委", "community_committee": "社区党委", "general_branch": "党总支", "branch": "党支部",
    "joint_branch": "联合党支部", "floating_branch": "流动党员党支部", "two_new_branch": "两新党支部", "group": "党小组",
}


def _template(orgs: list[tuple[int, str, str, str]]) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False})
    header = book.add_format({"bold": True, "bg_color": "#F2DCDB", "border": 1, "align": "center"})
    required = book.add_format({"bold": True, "bg_color": "#F4B6B6", "border": 1, "align": "center"})
    text = book.add_format({"num_format": "@"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    quoted = book.add_format({"quote_prefix": True})
    ws = book.add_worksheet("党员信息")
    widths = [12, 14, 26, 10, 12, 12, 6, 12, 21, 24]
    for column, (name, width) in enumerate(zip(COLUMNS, widths)):
        is_date = name.endswith("日期")
        ws.set_column(column, column, width, day if is_date else text)
        ws.write_string(0, column, name, required if name in REQUIRED else header)
    ws.freeze_panes(1, 0)
    last = MAX_ROWS
    ws.data_validation(1, 3, last, 3, {"validate": "list", "source": ["正式", "预备"]})
    ws.data_validation(1, 6, last, 6, {"validate": "list", "source": ["男", "女"]})
    if orgs:
        ws.data_validation(1, 2, last, 2, {
            "validate": "list", "source": f"=组织列表!$B$2:$B${len(orgs) + 1}", "error_type": "information",
            "error_message": "可填写“组织列表”中的名称或编号",
        })
    notes = book.add_worksheet("填写说明")
    notes.set_column(0, 0, 12)
    notes.set_column(1, 1, 80)
    lines = [
        ("列", "说明"),
        ("姓名", "必填，不超过 50 个字"),
        ("手机号", "必填，11 位手机号，作为登录账号，不能与已有党员或账号重复，文件内也不能重复"),
        ("所在支部", "必填，填写“组织列表”中的组织名称；如有重名，请填写组织编号"),
        ("党员类型", "正式 或 预备，留空按正式"),
        ("入党日期", "如 2001-07-01（也可 2001/7/1、2001年7月1日）"),
        ("转正日期", "不能早于入党日期"),
        ("性别", "男 或 女"),
        ("出生日期", "如 1950-10-01"),
        ("身份证号", "可不填；18 位（末位可为 X）或 15 位。系统只保存加密摘要和后 4 位。请保持本列为文本格式"),
        ("标签", "多个标签用逗号、顿号或空格分隔，如：老党员、志愿者"),
        ("", f"第 1 行为表头，从第 2 行开始填写，每个文件最多 {MAX_ROWS} 行、{MAX_BYTES // (1024 * 1024)} MiB。"),
        ("", "导入时先检查全部数据；任何一行有错误时不会导入任何数据，请按提示的行号和列修改后重新上传。"),
        ("", "导入的党员账号尚未激活，请在党员详情中生成激活码发给本人。"),
    ]
    for row, (a, b) in enumerate(lines):
        notes.write_string(row, 0, a, header if row == 0 else None)
        notes.write_string(row, 1, b, header if row == 0 else None)
    listing = book.add_worksheet("组织列表")
    listing.set_column(0, 0, 10)
    listing.set_column(1, 1, 30)
    listing.set_column(2, 2, 16)
    for column, name in enumerate(("组织编号", "组织名称", "类型")):
        listing.write_string(0, column, name, header)
    for row, (org_id, name, _, kind) in enumerate(orgs, start=1):
        listing.write_number(row, 0, org_id)
        listing.write_string(row, 1, name, quoted if name.startswith(("=", "+", "-", "@")) else None)
        listing.write_string(row, 2, ORG_KINDS.get(kind, kind))
    book.close()
    return buffer.getvalue()
