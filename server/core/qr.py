"""QR rendering without Pillow: SVG paths, pure-Python PNG and A4 PDF posters, cached by (content, format).

A render costs 10–30 ms, so routes run it in a thread (``sync_to_thread``) and repeated
downloads of the same poster hit the cache.
"""

from __future__ import annotations

import io
from functools import lru_cache
from html import escape

import qrcode
import qrcode.image.pure
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

MAX_VERSION = 12  # DESIGN §3: every code stays at version ≤ 12 (phones read it from a poster)

# Poster texts, the same on the SVG and the PDF.
POSTER_BANNER = "红驿 · 党员联络服务站"
POSTER_HELP = "用手机相机、微信“扫一扫”或红驿应用扫码；无网络时也可签到，联网后自动同步"


class QRTooLarge(ValueError):
    pass


def _qr(content: str, box_size: int, border: int = 4) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=border)
    code.add_data(content)
    code.make(fit=True)
    if code.version > MAX_VERSION:
        raise QRTooLarge(f"QR version {code.version} > {MAX_VERSION}")
    return code


def qr_version(content: str) -> int:
    return _qr(content, 1).version


@lru_cache(maxsize=512)
def qr_svg(content: str) -> bytes:
    image = _qr(content, 10).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


@lru_cache(maxsize=512)
def qr_png(content: str, box_size: int = 10) -> bytes:
    image = _qr(content, box_size).make_image(image_factory=qrcode.image.pure.PyPNGImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def _qr_path(content: str) -> tuple[str, int]:
    """The QR as one SVG path in module units, and its size in modules (with the quiet zone)."""
    code = _qr(content, 1)
    matrix = code.get_matrix()
    parts = [f"M{x},{y}h1v1h-1z" for y, row in enumerate(matrix) for x, cell in enumerate(row) if cell]
    return "".join(parts), len(matrix)


@lru_cache(maxsize=256)
def poster_svg(title: str, subtitle: str, content: str, hint: str) -> bytes:
    """An A4 poster (210×297 mm viewBox): title, a large QR, and how to scan it — in Chinese."""
    path, size = _qr_path(content)
    qr_mm = 150
    scale = qr_mm / size
    x0 = (210 - qr_mm) / 2
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 210 297">
<rect width="210" height="297" fill="#fff"/>
<rect x="0" y="0" width="210" height="30" fill="#c8102e"/>
<text x="105" y="20" font-size="11" fill="#fff" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" font-weight="bold">{POSTER_BANNER}</text>
<text x="105" y="50" font-size="12" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" font-weight="bold">{escape(title)}</text>
<text x="105" y="62" font-size="7" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" fill="#444">{escape(subtitle)}</text>
<g transform="translate({x0:.2f},72) scale({scale:.4f})"><path d="{path}" fill="#000"/></g>
<text x="105" y="240" font-size="8" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif">{escape(hint)}</text>
<text x="105" y="252" font-size="6" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" fill="#666">{POSTER_HELP}</text>
</svg>"""
    return svg.encode()


@lru_cache(maxsize=256)
def card_svg(name: str, org_name: str, content: str) -> bytes:
    """A member card sized for a card holder (85.6×54 mm): name, branch, QR for staff to scan."""
    path, size = _qr_path(content)
    qr_mm = 46
    scale = qr_mm / size
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="54mm" viewBox="0 0 85.6 54">
<rect width="85.6" height="54" rx="3" fill="#fff" stroke="#c8102e" stroke-width="0.5"/>
<text x="4" y="9" font-size="4" fill="#c8102e" font-family="Noto Sans CJK SC, sans-serif" font-weight="bold">红驿 党员服务卡</text>
<text x="4" y="22" font-size="6" font-family="Noto Sans CJK SC, sans-serif" font-weight="bold">{escape(name)}</text>
<text x="4" y="30" font-size="3.2" font-family="Noto Sans CJK SC, sans-serif" fill="#444">{escape(org_name)}</text>
<text x="4" y="48" font-size="2.6" font-family="Noto Sans CJK SC, sans-serif" fill="#666">到站请出示此卡，由工作人员扫码签到</text>
<g transform="translate(37.6,4) scale({scale:.4f})"><path d="{path}" fill="#000"/></g>
</svg>"""
    return svg.encode()


_PDF_FONT = "STSong-Light"  # one of the CID fonts every PDF reader has: no font file to ship or embed


@lru_cache(maxsize=1)
def _pdf_font() -> str:
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    rl_config.useA85 = 0  # compressed streams as raw bytes, not ASCII85 text (a quarter smaller)
    pdfmetrics.registerFont(UnicodeCIDFont(_PDF_FONT))
    return _PDF_FONT


# The PDF readers' Adobe-GB1 CMap has no glyph for some common marks: use look-alikes it has. Characters
# beyond the BMP (most emoji) cannot be encoded in UCS-2 at all; they and the BMP's emoji-like symbols
# (U+2600–U+27BF, no glyphs there) are left out.
_PDF_LOOKALIKES = str.maketrans({"·": "・", "•": "・", "\ufe0f": None, "\u200d": None})


def pdf_text(text: str) -> str:
    cleaned = "".join(
        ch for ch in text.translate(_PDF_LOOKALIKES) if ord(ch) <= 0xFFFF and not 0x2600 <= ord(ch) <= 0x27BF
    )
    return " ".join(cleaned.split())


def _fit_lines(text: str, size: float, width: float, max_lines: int) -> tuple[list[str], float]:
    """Shrink ``text`` to ``width`` (down to 60% of ``size``), then wrap it by characters."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    font = _pdf_font()
    for shrink in (1.0, 0.9, 0.8, 0.7, 0.6):
        if stringWidth(text, font, size * shrink) <= width:
            return [text], size * shrink
    size *= 0.6
    lines, line = [], ""
    for ch in text:
        if line and stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ch
        else:
            line += ch
    lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-1] + "…"
    return lines, size


@lru_cache(maxsize=256)
def poster_pdf(title: str, subtitle: str, content: str, hint: str) -> bytes:
    """The A4 poster of ``poster_svg`` as a one-page PDF: banner, title, subtitle, a 150 mm QR, how to scan."""
    from reportlab.lib.colors import HexColor, black, white
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    font = _pdf_font()
    title, subtitle, hint = pdf_text(title), pdf_text(subtitle), pdf_text(hint)
    page_w, page_h = A4
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1, invariant=1)
    pdf.setTitle(title)
    pdf.setSubject(subtitle)
    pdf.setCreator("红驿 Hongyi")

    def top(y_mm: float) -> float:  # SVG-style coordinates (from the top, in mm) → PDF points from the bottom
        return page_h - y_mm * mm

    width = 190 * mm
    pdf.setFillColor(HexColor("#c8102e"))
    pdf.rect(0, top(30), page_w, 30 * mm, stroke=0, fill=1)
    pdf.setFillColor(white)
    pdf.setFont(font, 11 * mm)
    pdf.drawCentredString(page_w / 2, top(21), pdf_text(POSTER_BANNER))

    pdf.setFillColor(black)
    lines, size = _fit_lines(title, 12 * mm, width, 2)
    y = 50 if len(lines) == 1 else 45
    for line in lines:
        pdf.setFont(font, size)
        pdf.drawCentredString(page_w / 2, top(y), line)
        y += size / mm * 1.2
    sub_lines, sub_size = _fit_lines(subtitle, 7 * mm, width, 1)
    pdf.setFillColor(HexColor("#444444"))
    pdf.setFont(font, sub_size)
    pdf.drawCentredString(page_w / 2, top(max(63, y + 3)), sub_lines[0])

    # The QR: one rectangle per horizontal run of dark modules (quiet zone included in the size).
    matrix = _qr(content, 1).get_matrix()
    modules = len(matrix)
    module = 150 * mm / modules
    x0, y0 = (page_w - 150 * mm) / 2, top(72)
    pdf.setFillColor(black)
    path = pdf.beginPath()
    for row_index, row in enumerate(matrix):
        x = 0
        while x < modules:
            if row[x]:
                start = x
                while x < modules and row[x]:
                    x += 1
                path.rect(x0 + start * module, y0 - (row_index + 1) * module, (x - start) * module, module)
            else:
                x += 1
    pdf.drawPath(path, stroke=0, fill=1)

    hint_lines, hint_size = _fit_lines(hint, 9 * mm, width, 2)
    y = 238
    for line in hint_lines:
        pdf.setFont(font, hint_size)
        pdf.drawCentredString(page_w / 2, top(y), line)
        y += hint_size / mm * 1.3
    pdf.setFillColor(HexColor("#666666"))
    help_lines, help_size = _fit_lines(pdf_text(POSTER_HELP), 5 * mm, width, 2)
    y += 4
    for line in help_lines:
        pdf.setFont(font, help_size)
        pdf.drawCentredString(page_w / 2, top(y), line)
        y += help_size / mm * 1.3
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
