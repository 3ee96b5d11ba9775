"""Serving the built PWA: SPA fallback for deep links, gzip, cache headers, no leaks outside dist."""

from __future__ import annotations

import gzip
import os
from dataclasses import replace
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.settings import Settings


def _dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>红驿</title>" + "<!-- shell -->" * 100, encoding="utf-8")
    (dist / "sw.js").write_text("self.addEventListener('fetch', () => {})" + ";" * 1000)
    (dist / "assets" / "app-1a2b.js").write_text("console.log('红驿');" * 200, encoding="utf-8")
    (dist / "assets" / "zxing_reader-9f.wasm").write_bytes(b"\0asm" + bytes(4000))
    (root / "secret.txt").write_text("outside dist")
    return dist


async def test_pwa_files_deep_links_and_compression(settings: Settings, tmp_path: Path) -> None:
    app = create_app(replace(settings, pwa_dist=_dist(tmp_path)))
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        gz = {"Accept-Encoding": "gzip"}
        asset = await client.get("/assets/app-1a2b.js", headers=gz)
        assert asset.status_code == 200 and asset.headers["content-encoding"] == "gzip"
        assert "immutable" in asset.headers["cache-control"] and asset.text.startswith("console.log('红驿')")
        assert int(asset.headers["content-length"]) < len(asset.text.encode())
        plain = await client.get("/assets/app-1a2b.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.text == asset.text

        wasm = await client.get("/assets/zxing_reader-9f.wasm", headers=gz)
        assert wasm.headers["content-type"] == "application/wasm" and wasm.content.startswith(b"\0asm")

        for path in ("/", "/q/eyJhbGciOiJFZERTQSJ9.e30.c2ln", "/records", "/activate?code=abc"):
            page = await client.get(path, headers=gz)
            assert page.status_code == 200 and "红驿" in page.text, path
            assert page.headers["cache-control"] == "no-cache"
            # Vant's icon font is an inline data: font; wasm needs wasm-unsafe-eval; nothing else is loosened.
            csp = page.headers["content-security-policy"]
            assert "font-src 'self' data:" in csp and "script-src 'self' 'wasm-unsafe-eval';" in csp
        assert (await client.get("/sw.js")).headers["cache-control"] == "no-cache"

        missing = await client.get("/assets/gone-123.js")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        for escape in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
            assert "outside dist" not in (await client.get(escape)).text, escape
        api = await client.get("/api/v1/nothing-here")
        assert api.status_code == 404 and api.json()["code"] == "not_found"


def test_gzip_copy_is_exact(tmp_path: Path) -> None:
    from server.web.routes import _read

    dist = _dist(tmp_path)
    raw, packed = _read(dist / "sw.js")
    assert packed is not None and gzip.decompress(packed) == raw
    (dist / "sw.js").write_text("changed" * 200)  # a rebuilt file is re-read
    os.utime(dist / "sw.js", ns=(1, 1))
    assert _read(dist / "sw.js")[0] == b"changed" * 200
