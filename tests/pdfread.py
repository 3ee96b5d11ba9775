"""Just enough PDF reading for tests: the page count, the text drawn (CID font, UTF-16) and the QR modules."""

from __future__ import annotations

import base64
import re
import zlib

_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\n?endstream", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


def streams(pdf: bytes) -> list[bytes]:
    out = []
    for raw in _STREAM.findall(pdf):
        if raw.rstrip().endswith(b"~>"):  # ASCII85
            raw = base64.a85decode(raw.rstrip(), adobe=True)
        try:
            out.append(zlib.decompress(raw))
        except zlib.error:
            out.append(raw)
    return out


def _literal(data: bytes, start: int) -> tuple[bytes, int]:
    """The PDF literal string starting after '(' at ``start``; returns (bytes, index after ')')."""
    out, depth, i = bytearray(), 1, start
    while i < len(data):
        ch = data[i : i + 1]
        if ch == b"\\":
            nxt = data[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out += _ESCAPES[nxt]
                i += 2
                continue
            digits = re.match(rb"[0-7]{1,3}", data[i + 1 : i + 4])
            if digits:
                out.append(int(digits.group(), 8))
                i += 1 + len(digits.group())
                continue
            i += 2
            continue
        if ch == b"(":
            depth += 1
        elif ch == b")":
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
        out += ch
        i += 1
    raise ValueError("unterminated string")


def texts(pdf: bytes) -> list[str]:
    """Every string shown with Tj, decoded as UTF-16BE (the CID font's UCS-2 encoding)."""
    found = []
    for stream in streams(pdf):
        i = 0
        while (i := stream.find(b"(", i)) != -1:
            value, end = _literal(stream, i + 1)
            if stream[end : end + 4].strip().startswith(b"Tj"):
                found.append(value.decode("utf-16-be"))
            i = end
    return found


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def rects(pdf: bytes) -> list[tuple[float, float, float, float]]:
    number = rb"(-?[\d.]+)"
    pattern = re.compile(number + rb" " + number + rb" " + number + rb" " + number + rb" re\b")
    return [tuple(float(v) for v in m) for s in streams(pdf) for m in pattern.findall(s)]  # type: ignore[misc]


def qr_cells(pdf: bytes, modules: int, size_pt: float) -> set[tuple[int, int]]:
    """Dark (row, col) cells of a QR drawn as horizontal runs of ``size_pt / modules`` high rectangles."""
    unit = size_pt / modules
    drawn = [r for r in rects(pdf) if abs(r[3] - unit) < 0.01]
    left = min(r[0] for r in drawn)
    top = max(r[1] + r[3] for r in drawn)
    cells = set()
    for x, y, w, h in drawn:
        row = round((top - (y + h)) / unit)
        col = round((x - left) / unit)
        for c in range(col, col + round(w / unit)):
            cells.add((row, c))
    return cells
