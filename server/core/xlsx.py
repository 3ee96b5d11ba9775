"""xlsx exports: small one-sheet files (openpyxl) and streamed multi-sheet reports (XlsxWriter).

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
# Streamed reports (XlsxWriter ``constant_memory``): each sheet's rows go to its own temp file as they
# are written, so a 10k-member report keeps one row in memory per sheet, not the whole workbook.


class Percent(float):
    """A fraction shown as a percentage (0.875 → 87.5%)."""


class Book:
    """A multi-sheet report written row by row. Sheets may be filled in turns (each keeps its own
    temp file), but within a sheet rows are written top to bottom. ``close()`` returns the bytes."""

    def __init__(self, tz: ZoneInfo) -> None:
        import xlsxwriter

        self.tz = tz
        self._buffer = io.BytesIO()
        self._book = xlsxwriter.Workbook(self._buffer, {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "default_date_format": DATE_FORMAT,
        })
        add = self._book.add_format
        self.formats = {
            "title": add({"bold": True, "font_size": 14}),
            "intro": add({}),
            "header": add({"bold": True, "bg_color": "#F2DCDB", "align": "center", "border": 1}),
            "time": add({"num_format": TIME_FORMAT}),
            "date": add({"num_format": DATE_FORMAT}),
            "percent": add({"num_format": "0.0%"}),
            "quoted": add({"quote_prefix": True}),
            "text": add({"num_format": "@"}),
        }

    def sheet(self, title: str, *, intro: Sequence[str], headers: Sequence[str], widths: Sequence[int]) -> "BookSheet":
        """``intro`` lines (the first as a bold heading), a blank row, the header row; data follows.
        With no intro the header is row 1."""
        ws = self._book.add_worksheet(_sheet_title(title))
        for column, width in enumerate(widths):
            ws.set_column(column, column, width)
        out = BookSheet(self, ws)
        for index, line in enumerate(intro):
            fmt = self.formats["title" if index == 0 else "intro"]
            ws.write_string(out.next_row, 0, clean_text(line), fmt)
            out.next_row += 1
        if intro:
            out.next_row += 1
        for column, name in enumerate(headers):
            ws.write_string(out.next_row, column, name, self.formats["header"])
        out.next_row += 1
        ws.freeze_panes(out.next_row, 0)
        return out

    def close(self) -> bytes:
        self._book.close()
        return self._buffer.getvalue()


class BookSheet:
    def __init__(self, book: Book, ws: Any) -> None:
        self.book = book
        self.ws = ws
        self.next_row = 0

    def rows(self, rows: Any) -> None:
        for row in rows:
            self.row(row)

    def row(self, values: Sequence[Any]) -> None:
        ws, r, formats, tz = self.ws, self.next_row, self.book.formats, self.book.tz
        for c, value in enumerate(values):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                value = clean_text(value)
                if risky_text(value):
                    ws.write_string(r, c, value, formats["quoted"])
                else:
                    ws.write_string(r, c, value)
            elif isinstance(value, bool):
                ws.write_string(r, c, "是" if value else "否")
            elif isinstance(value, Percent):
                ws.write_number(r, c, float(value), formats["percent"])
            elif isinstance(value, (int, float)):
                ws.write_number(r, c, value)
            elif isinstance(value, datetime):
                ws.write_datetime(r, c, cell_value(value, tz), formats["time"])
            elif isinstance(value, date):
                ws.write_datetime(r, c, value, formats["date"])
            else:
                ws.write_string(r, c, clean_text(str(value)))
        self.next_row += 1
