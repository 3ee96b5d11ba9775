"""Headers for files people download (posters, exports)."""

from __future__ import annotations

import re
from urllib.parse import quote

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def content_disposition(filename: str, fallback: str, *, inline: bool = False) -> str:
    """``attachment; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded name>`` (RFC 6266/5987).

    The UTF-8 name keeps Chinese titles; characters that are not allowed in file names are replaced.
    """
    name = _UNSAFE.sub("_", filename).strip(" .") or fallback
    ascii_name = _UNSAFE.sub("_", fallback).encode("ascii", "ignore").decode() or "download"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
