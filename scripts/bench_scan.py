#!/usr/bin/env python3
"""Scanner figures in real Chromium (a benchmark, not a test): QR decode time per camera frame
(zxing-wasm; BarcodeDetector is absent on Linux Chromium) and offline scan-to-feedback time
(decoded text → "已记录，联网后自动同步" painted), over repeated scans of one activity code.

Starts its own server on a throw-away SQLite database at 127.0.0.1 and stops it by PID.
Usage: .venv/bin/python scripts/bench_scan.py [--scans 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, MEMBER_PASSWORD, VIEWPORT, y4m_from_png  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hongyi-scan-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{work}/hongyi.db", "HONGYI_DATA_DIR": str(work),
           "HONGYI_KEY_FILE": str(work / "keys.json"), "PUBLIC_BASE_URL": base}
    for step in ("migrate", "seed-demo"):
        subprocess.run([sys.executable, "-m", "server", step], cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/api/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        admin = httpx.Client(base_url=base)
        token = admin.post("/api/v1/auth/login", json={"phone": "13800000000", "password": "hongyi-admin"}).json()["access_token"]
        admin.headers["Authorization"] = f"Bearer {token}"
        org = next(o["id"] for o in admin.get("/api/v1/orgs").json() if o["name"] == "幸福里第一党支部")
        station = admin.post("/api/v1/stations", json={"name": "基准站", "org_id": org}).json()
        now = datetime.now(UTC)
        activity = admin.post("/api/v1/activities", json={
            "type": "theme_day", "title": "基准活动", "station_id": station["id"],
            "starts_at": (now - timedelta(minutes=10)).isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat()}).json()
        member = admin.post("/api/v1/members", json={"name": "基准党员", "phone": "13700009999", "org_id": org}).json()
        code = admin.post(f"/api/v1/members/{member['id']}/invite").json()["code"]
        httpx.post(f"{base}/api/v1/auth/activate", json={"code": code, "password": MEMBER_PASSWORD}).raise_for_status()
        camera = y4m_from_png(admin.get(f"/api/v1/activities/{activity['id']}/qr", params={"format": "png"}).content,
                              work / "code.y4m")

        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(work / "profile"), executable_path=CHROMIUM, headless=True, viewport=VIEWPORT, base_url=base,
                args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={camera}"],
                permissions=["camera"], bypass_csp=True, is_mobile=True, has_touch=True, device_scale_factor=2,
            )
            page = context.pages[0]
            page.goto("/login")
            page.get_by_placeholder("请输入手机号").fill("13700009999")
            page.get_by_placeholder("请输入密码").fill(MEMBER_PASSWORD)
            page.locator("[data-test=login-submit]").click()
            page.locator("[data-test=open-scanner]").wait_for()
            page.wait_for_function("navigator.serviceWorker.controller !== null")
            page.wait_for_timeout(1000)  # keys and schedule cached
            context.set_offline(True)
            page.goto("/scan")
            for i in range(args.scans):
                page.wait_for_function("document.querySelector('[data-test=scan-headline]')?.textContent.includes('联网后自动同步')")
                if i + 1 < args.scans:
                    page.locator("[data-test=scan-again]").click()
            metrics = page.evaluate("window.__hongyiMetrics")
            context.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    decode, feedback = metrics["decodeMs"], metrics["feedbackMs"]
    print(f"engine: {metrics.get('engine')}, frames decoded: {len(decode)}, scans: {len(feedback)}")
    warm = decode[1:] or decode
    print(f"decode per 640×480 frame: first {decode[0]:.1f} ms (instantiates the wasm), then median "
          f"{statistics.median(warm):.1f} ms, p95 {pct(warm, 0.95):.1f} ms")
    print(f"offline scan-to-feedback: median {statistics.median(feedback):.1f} ms, p95 {pct(feedback, 0.95):.1f} ms, "
          f"max {max(feedback):.1f} ms (target ≤ 150 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
