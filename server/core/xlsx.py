"""Small xlsx sheets for exports (openpyxl; run them off the event loop, like QR renders).

Times are written as local wall-clock times (Excel has no time zones); text is always stored as
text — a name such as ``=HYPERLINK(…)`` never becomes a formula.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

TIME_FORMAT = "yyyy-mm-dd hh:mm"


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


def _sheet_title(title: str) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\ ."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title).strip("'") or "Sheet1"
    return cleaned[:31]
