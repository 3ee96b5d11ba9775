"""xlsx exports: small one-sheet files (openpyxl) and streamed multi-sheet reports (``Book``).

Times are written as local wall-clock times (Excel has no time zones); text is always stored as
text — a name such as ``=HYPERLINK(…)`` never becomes a formula — and text that a spreadsheet
could take for a formula (leading ``= + - @``, tab or CR) is also marked "quote prefix", so it
stays text even when someone edits the cell or saves the sheet as CSV. Build them off the event
loop (``asyncio.to_thread``), like QR renders.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

TIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in XML 1.0 (tab, LF, CR are)
MAX_TEXT = 32_767  # Excel's limit for one cell


def risky_text(value: str) -> bool:
    """Text a spreadsheet might run as a formula (CSV/DDE injection)."""
    return value.startswith(FORMULA_TRIGGERS)


def clean_text(value: str) -> str:
    value = _ILLEGAL.sub("", value)
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def cell_value(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).replace(tzinfo=None) if value.tzinfo else value
    return value


def sheet(
    *,
    title: str,
    intro: Sequence[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[int],
    tz: ZoneInfo,
) -> bytes:
    """One sheet: ``intro`` lines (the first bold, as a heading), a bold header row, then ``rows``."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    ws = book.active
    ws.title = _sheet_title(title)
    columns = len(headers)
    for index, line in enumerate(intro, start=1):
        cell = ws.cell(row=index, column=1)
        _set(cell, line)
        cell.font = Font(bold=index == 1, size=14 if index == 1 else 11)
        if columns > 1:
            ws.merge_cells(start_row=index, start_column=1, end_row=index, end_column=columns)
    header_row = len(intro) + 2 if intro else 1
    for column, name in enumerate(headers, start=1):
        cell = ws.cell(row=header_row, column=column)
        _set(cell, name)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="F2DCDB")
        cell.alignment = Alignment(horizontal="center")
    for offset, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            cell = ws.cell(row=header_row + offset, column=column)
            value = cell_value(value, tz)
            _set(cell, value)
            if isinstance(value, datetime):
                cell.number_format = TIME_FORMAT
    for column, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(column)].width = width
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _set(cell: Any, value: Any) -> None:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters are not allowed in xlsx text
    cell.value = value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # text, not a formula
    if isinstance(value, str) and risky_text(value):
        cell.quotePrefix = True  # stays text when edited or saved as CSV


def _sheet_title(title: str) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\ ."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title).strip("'") or "Sheet1"
    return cleaned[:31]


# ---------------------------------------------------------------------------------------------------
# Streamed reports. Each sheet's rows are written as SpreadsheetML straight into a temp file (inline
# strings, one style table), and the package is zipped at ``close()``: memory holds one batch of rows,
# not the workbook. This is what XlsxWriter's ``constant_memory`` mode does, minus its per-cell Python
# work — measured 3× faster on 100k rows (≈1.1 s against 3.4 s), which a 10k-member attendance report
# (≈150k detail rows) needs to stay within seconds.

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN_NS}">'
    '<numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/><numFmt numFmtId="166" formatCode="0.0%"/></numFmts>'
    '<fonts count="3"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFF2DCDB"/><bgColor indexed="64"/></patternFill></fill></fills>'
    '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '<border><left style="thin"><color auto="1"/></left><right style="thin"><color auto="1"/></right>'
    '<top style="thin"><color auto="1"/></top><bottom style="thin"><color auto="1"/></bottom><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1"'
    ' applyAlignment="1"><alignment horizontal="center"/></xf>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)
_S_TITLE, _S_HEADER, _S_TIME, _S_DATE, _S_PERCENT, _S_QUOTED = 1, 2, 3, 4, 5, 6
_EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_EPOCH_DAY = date(1899, 12, 30)
_EXCEL_EPOCH_ORDINAL = _EXCEL_EPOCH_DAY.toordinal()


def _letters(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


_COLUMNS = [_letters(i) for i in range(256)]


def _escape(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _serial(value: datetime, tz: ZoneInfo) -> float:
    """Excel's serial day number of a local wall-clock time (aware values are shown in ``tz``)."""
    local = value.astimezone(tz) if value.tzinfo is not None else value
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return local.toordinal() - _EXCEL_EPOCH_ORDINAL + seconds / 86400


class Percent(float):
    """A fraction shown as a percentage (0.875 → 87.5%)."""


class Book:
    """A multi-sheet report written row by row. Sheets may be filled in turns (each has its own temp
    file); within a sheet rows go top to bottom. ``close()`` returns the xlsx bytes."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.sheets: list[BookSheet] = []
        self.text_cells: dict[str, str] = {}  # text value → the cell's XML after its reference

    def sheet(self, title: str, *, intro: Sequence[str], headers: Sequence[str], widths: Sequence[int]) -> "BookSheet":
        """``intro`` lines (the first as a bold heading), a blank row, the header row; data follows.
        With no intro the header is row 1. The rows above the data stay frozen."""
        header_row = len(intro) + 2 if intro else 1
        out = BookSheet(self, _sheet_title(title), header_row, widths)
        for index, line in enumerate(intro):
            out.styled_row([line], _S_TITLE if index == 0 else 0)
        if intro:
            out.next_row += 1
        out.styled_row(list(headers), _S_HEADER)
        self.sheets.append(out)
        return out

    def close(self) -> bytes:
        import shutil
        import zipfile

        names = []
        for sheet in self.sheets:
            base, name, n = sheet.title, sheet.title, 2
            while name in names:
                name, n = f"{base[:28]}_{n}", n + 1
            names.append(name)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            overrides = "".join(
                f'<Override PartName="/xl/worksheets/sheet{i}.xml"'
                ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                for i in range(1, len(self.sheets) + 1)
            )
            z.writestr("[Content_Types].xml", _XML + (
                '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml"'
                ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml"'
                ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                f"{overrides}</Types>"
            ))
            z.writestr("_rels/.rels", _XML + (
                f'<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1"'
                ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"'
                ' Target="xl/workbook.xml"/></Relationships>'
            ))
            sheets = "".join(
                f'<sheet name="{_escape(name).replace(chr(34), "&quot;")}" sheetId="{i}" r:id="rId{i}"/>'
                for i, name in enumerate(names, start=1)
            )
            z.writestr("xl/workbook.xml", _XML + (
                f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><bookViews><workbookView/></bookViews>'
                f"<sheets>{sheets}</sheets></workbook>"
            ))
            rels = "".join(
                f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                for i in range(1, len(self.sheets) + 1)
            )
            z.writestr("xl/_rels/workbook.xml.rels", _XML + (
                f'<Relationships xmlns="{_PKG_REL_NS}">{rels}'
                f'<Relationship Id="rId{len(self.sheets) + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
                "</Relationships>"
            ))
            z.writestr("xl/styles.xml", _STYLES)
            for i, sheet in enumerate(self.sheets, start=1):
                with z.open(f"xl/worksheets/sheet{i}.xml", "w", force_zip64=True) as target:
                    target.write(sheet.head().encode())
                    sheet.file.seek(0)
                    shutil.copyfileobj(sheet.file, target, 1 << 20)
                    target.write(b"</sheetData></worksheet>")
                sheet.file.close()
        return buffer.getvalue()


class BookSheet:
    def __init__(self, book: Book, title: str, header_row: int, widths: Sequence[int]) -> None:
        import tempfile

        self.book = book
        self.title = title
        self.header_row = header_row
        self.widths = list(widths)
        self.next_row = 1  # 1-based, as Excel numbers rows
        self.file = tempfile.TemporaryFile()

    def head(self) -> str:
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(self.widths, start=1)
        )
        top = self.header_row + 1
        return _XML + (
            f'<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><sheetViews><sheetView workbookViewId="0">'
            f'<pane ySplit="{self.header_row}" topLeftCell="A{top}" activePane="bottomLeft" state="frozen"/>'
            f'<selection pane="bottomLeft" activeCell="A{top}" sqref="A{top}"/></sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>' + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>"
        )

    def styled_row(self, values: Sequence[str], style: int) -> None:
        r = self.next_row
        cells = "".join(
            f'<c r="{_COLUMNS[c]}{r}" s="{style}" t="inlineStr"><is><t xml:space="preserve">{_escape(clean_text(v))}</t></is></c>'
            for c, v in enumerate(values)
        )
        self.file.write(f'<row r="{r}">{cells}</row>'.encode())
        self.next_row += 1

    def row(self, values: Sequence[Any]) -> None:
        self.rows((values,))

    def rows(self, rows: Any) -> None:
        tz = self.book.tz
        texts = self.book.text_cells
        out: list[str] = []
        r = self.next_row
        for values in rows:
            cells = []
            for c, value in enumerate(values):
                if value is None or value == "":
                    continue
                if isinstance(value, str):
                    # Names, branches and labels repeat on many rows: clean, escape and style once.
                    tail = texts.get(value)
                    if tail is None:
                        text = _escape(clean_text(value))
                        style = f' s="{_S_QUOTED}"' if risky_text(text) else ""
                        tail = f'{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
                        if len(texts) < 50_000:
                            texts[value] = tail
                    cells.append(f'<c r="{_COLUMNS[c]}{r}"{tail}')
                elif isinstance(value, bool):
                    cells.append(f'<c r="{_COLUMNS[c]}{r}" t="inlineStr"><is><t>{"是" if value else "否"}</t></is></c>')
                elif isinstance(value, Percent):
                    cells.append(f'<c r="{_COLUMNS[c]}{r}" s="{_S_PERCENT}"><v>{float(value)!r}</v></c>')
                elif isinstance(value, int):
                    cells.append(f'<c r="{_COLUMNS[c]}{r}"><v>{value}</v></c>')
                elif isinstance(value, float):
                    if value == value and value not in (float("inf"), float("-inf")):
                        cells.append(f'<c r="{_COLUMNS[c]}{r}"><v>{value!r}</v></c>')
                elif isinstance(value, datetime):
                    cells.append(f'<c r="{_COLUMNS[c]}{r}" s="{_S_TIME}"><v>{_serial(value, tz)!r}</v></c>')
                elif isinstance(value, date):
                    cells.append(f'<c r="{_COLUMNS[c]}{r}" s="{_S_DATE}"><v>{(value - _EXCEL_EPOCH_DAY).days}</v></c>')
                else:
                    cells.append(
                        f'<c r="{_COLUMNS[c]}{r}" t="inlineStr"><is><t xml:space="preserve">{_escape(clean_text(str(value)))}</t></is></c>'
                    )
            out.append(f'<row r="{r}">{"".join(cells)}</row>')
            r += 1
            if len(out) >= 2000:
                self.file.write("".join(out).encode())
                out.clear()
        if out:
            self.file.write("".join(out).encode())
        self.next_row = r
