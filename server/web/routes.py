"""Serves the built PWA with an SPA fallback: deep links such as /q/{token} get index.html."""

from __future__ import annotations

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


def _file_response(dist: Path, relative: str) -> Response[bytes] | None:
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
    return Response(target.read_bytes(), media_type=media_type, headers={"Cache-Control": cache})


def _index(ctx: Ctx) -> Response[bytes]:
    found = _file_response(ctx.settings.pwa_dist, "index.html")
    if found is not None:
        return found
    return Response(PLACEHOLDER.encode(), media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


@get("/", opt=PUBLIC, include_in_schema=False)
async def index(ctx: Ctx) -> Response[bytes]:
    return _index(ctx)


@get("/{path:path}", opt=PUBLIC, include_in_schema=False)
async def spa(request: Request, ctx: Ctx, path: FromPath[str]) -> Response[bytes]:
    relative = path.lstrip("/")
    if relative.startswith(("api/", "schema")):
        from server.core.errors import APIError

        raise APIError(404, "not_found", "请求的地址不存在")
    found = _file_response(ctx.settings.pwa_dist, relative)
    if found is not None:
        return found
    if not relative.startswith("q/") and "." in relative.rsplit("/", 1)[-1]:  # a missing asset is a 404
        from server.core.errors import APIError

        raise APIError(404, "not_found", "文件不存在")
    return _index(ctx)
