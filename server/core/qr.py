"""QR rendering without Pillow: SVG paths and pure-Python PNG, cached by (content, format).

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
<text x="105" y="20" font-size="11" fill="#fff" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" font-weight="bold">红驿 · 党员联络服务站</text>
<text x="105" y="50" font-size="12" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" font-weight="bold">{escape(title)}</text>
<text x="105" y="62" font-size="7" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" fill="#444">{escape(subtitle)}</text>
<g transform="translate({x0:.2f},72) scale({scale:.4f})"><path d="{path}" fill="#000"/></g>
<text x="105" y="240" font-size="8" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif">{escape(hint)}</text>
<text x="105" y="252" font-size="6" text-anchor="middle" font-family="Noto Sans CJK SC, sans-serif" fill="#666">用手机相机、微信“扫一扫”或红驿应用扫码；无网络时也可签到，联网后自动同步</text>
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
