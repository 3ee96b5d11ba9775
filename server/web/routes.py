"""Serves the built PWA with an SPA fallback: deep links such as /q/{token} get index.html.

Files are read once and kept in memory with a gzip copy for text and wasm (phones at stations
have weak signal; the API itself is not compressed, its answers are small)."""

from __future__ import annotations

import gzip
import mimetypes
from pathlib import Path

from litestar import Request, Response, get
from litestar.params import FromPath

from server.core.context import Ctx

PLACEHOLDER = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>红驿</title></head>
<body style="font-family:sans-serif;font-size:18px;padding:24px"><h1 style="color:#c8102e">红驿 · 党员联络服务站</h1>
<p>服务已启动。手机应用尚未构建；接口文档见 <a href="/schema">/schema</a>。</p></body></html>"""

PUBLIC = {"exclude_from_auth": True}


COMPRESSIBLE = {".js", ".mjs", ".css", ".html", ".svg", ".wasm", ".webmanifest", ".json", ".txt"}
_files: dict[Path, tuple[int, bytes, bytes | None]] = {}  # path -> (mtime_ns, raw, gzipped)


def _read(target: Path) -> tuple[bytes, bytes | None]:
    mtime = target.stat().st_mtime_ns
    cached = _files.get(target)
    if cached is None or cached[0] != mtime:
        raw = target.read_bytes()
        # Level 6: a megabyte of wasm compresses in ~30 ms on first request (level 9 took several times longer).
        packed = gzip.compress(raw, 6, mtime=0) if target.suffix in COMPRESSIBLE and len(raw) > 512 else None
        cached = _files[target] = (mtime, raw, packed if packed and len(packed) < len(raw) else None)
    return cached[1], cached[2]


def _file_response(dist: Path, relative: str, accept_encoding: str = "") -> Response[bytes] | None:
    if not dist.is_dir():
        return None
    target = (dist / relative).resolve()
    if not target.is_relative_to(dist.resolve()) or not target.is_file():
        return None
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix == ".wasm":
        media_type = "application/wasm"
    if target.name in ("sw.js", "index.html", "manifest.webmanifest") or target.name.startswith("workbox-"):
        cache = "no-cache"
    elif relative.startswith("assets/"):
        cache = "public, max-age=31536000, immutable"
    else:
        cache = "public, max-age=3600"
    raw, packed = _read(target)
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    if packed is not None and "gzip" in accept_encoding:
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=media_type, headers=headers)
    return Response(raw, media_type=media_type, headers=headers)


def _index(ctx: Ctx, accept_encoding: str = "") -> Response[bytes]:
    found = _file_response(ctx.settings.pwa_dist, "index.html", accept_encoding)
    if found is not None:
        return found
    return Response(PLACEHOLDER.encode(), media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@get("/", opt=PUBLIC, include_in_schema=False)
async def index(request: Request, ctx: Ctx) -> Response[bytes]:
    return _index(ctx, request.headers.get("accept-encoding", ""))


@get("/{path:path}", opt=PUBLIC, include_in_schema=False)
async def spa(request: Request, ctx: Ctx, path: FromPath[str]) -> Response[bytes]:
    relative = path.lstrip("/")
    if relative.startswith(("api/", "schema")):
        from server.core.errors import APIError

        raise APIError(404, "not_found", "请求的地址不存在")
    accept_encoding = request.headers.get("accept-encoding", "")
    found = _file_response(ctx.settings.pwa_dist, relative, accept_encoding)
    if found is not None:
        return found
    if not relative.startswith("q/") and "." in relative.rsplit("/", 1)[-1]:  # a missing asset is a 404
        from server.core.errors import APIError

        raise APIError(404, "not_found", "文件不存在")
    return _index(ctx, accept_encoding)
