"""What the running server writes to its logs: no password, token, QR code, invite code or full ID number.

A real ``python -m server serve --access-log`` process (uvicorn's access log prints every path with
its query string) on a free 127.0.0.1 port and a temporary SQLite file; the logs are a process-level
matter, the same for either engine, so this runs once. The server is stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ROOT, run_cli

ID_CARD = "11010519491231002X"  # a made-up number in the official format
NEW_PASSWORD = "activate-Pass-9731"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("logs")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        "DATABASE_URL": f"sqlite:///{work / 'hongyi.db'}", "HONGYI_KEY_FILE": str(work / "keys.json"),
        "HONGYI_DATA_DIR": str(work), "PUBLIC_BASE_URL": base_url, "HONGYI_PWA_DIST": str(work / "no-dist"),
    }
    for step in (("migrate",), ("seed-demo",)):
        done = run_cli(*step, env=env)
        assert done.returncode == 0, done.stderr + done.stdout
    log = work / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port), "--access-log"],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(f"{base_url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not healthy in 30 s: " + log.read_text()[-2000:]
            time.sleep(0.2)
        yield base_url, process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _drive(base_url: str) -> list[str]:
    """Log in, invite and activate, open a deep link, check in, refresh; returns every secret seen."""
    secrets: list[str] = ["hongyi-admin", "hongyi-member", NEW_PASSWORD, ID_CARD, ID_CARD.lower()]
    with httpx.Client(base_url=base_url, timeout=10) as http:
        wrong = http.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "wrong-Pass-4411"})
        assert wrong.status_code == 401
        secrets.append("wrong-Pass-4411")
        admin = http.post("/api/v1/auth/login", json={"phone": "13800000000", "password": "hongyi-admin"}).json()
        member = http.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "hongyi-member"}).json()
        secrets += [admin["access_token"], admin["refresh_token"], member["access_token"], member["refresh_token"]]
        as_admin = {"Authorization": f"Bearer {admin['access_token']}"}
        as_member = {"Authorization": f"Bearer {member['access_token']}"}

        branch = next(o["id"] for o in http.get("/api/v1/orgs", headers=as_admin).json() if o["name"] == "幸福里第一党支部")
        created = http.post("/api/v1/members", headers=as_admin, json={
            "name": "日志测试", "phone": f"135{uuid.uuid4().int % 10**8:08d}", "org_id": branch, "id_card": ID_CARD,
        })
        assert created.status_code == 201, created.text
        assert ID_CARD not in created.text and created.json()["id_card_last4"] == ID_CARD[-4:]
        # The same number again, as a member search would carry it, and in a rejected edit.
        http.get("/api/v1/members", headers=as_admin, params={"q": ID_CARD})
        http.patch(f"/api/v1/members/{created.json()['id']}", headers=as_admin, json={"id_card": ID_CARD + "9"})

        invite = http.post(f"/api/v1/members/{created.json()['id']}/invite", headers=as_admin).json()
        secrets.append(invite["code"])
        link = urlsplit(invite["url"])
        assert http.get(f"{link.path}?{link.query}").status_code == 200  # the activation page, as a phone opens it
        activated = http.post("/api/v1/auth/activate", json={"code": invite["code"], "password": NEW_PASSWORD})
        assert activated.status_code == 200, activated.text
        secrets += [activated.json()["access_token"], activated.json()["refresh_token"]]

        activities = http.get("/api/v1/activities", headers=as_admin).json()
        activity = next(a for a in activities if a["status"] == "open" and a["type"] == "theme_day")
        code = http.get(f"/api/v1/activities/{activity['id']}/qr", headers=as_admin).json()
        secrets.append(code["token"])
        assert http.get(urlsplit(code["url"]).path).status_code == 200  # the /q/{token} deep link
        http.get(urlsplit(code["url"]).path + "?from=wechat")  # as WeChat's scanner opens it
        checked_in = http.post("/api/v1/checkins", headers=as_member, json={
            "client_uuid": uuid.uuid4().hex, "token": code["url"], "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        })
        assert checked_in.status_code == 200 and checked_in.json()["status"] == "accepted", checked_in.text

        refreshed = http.post("/api/v1/auth/refresh", json={"refresh_token": member["refresh_token"]})
        assert refreshed.status_code == 200
        secrets += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]
        # Misuse that ends in errors: a reused refresh token, an access token as a refresh token.
        assert http.post("/api/v1/auth/refresh", json={"refresh_token": member["refresh_token"]}).status_code == 401
        assert http.post("/api/v1/auth/refresh", json={"refresh_token": admin["access_token"]}).status_code == 401
        assert http.get("/api/v1/me", headers={"Authorization": f"Bearer {admin['refresh_token']}"}).status_code == 401
    return secrets


def test_logs_carry_no_secrets(served) -> None:
    base_url, process, log = served
    secrets = _drive(base_url)
    process.send_signal(signal.SIGTERM)  # flush and close the log before reading it
    process.wait(timeout=10)
    text = log.read_text(encoding="utf-8", errors="replace")
    # The access log is on and saw the traffic, so the absence below means something.
    assert "POST /api/v1/auth/login" in text and "POST /api/v1/checkins" in text and "/q/" in text, text[-3000:]
    leaked = [s for s in secrets if s in text]
    for token in [s for s in secrets if s.count(".") == 2]:  # a JWS's signature part alone is enough to replay it
        leaked += [part for part in token.split(".")[1:] if part in text]
    assert not leaked, f"secrets in the server log: {leaked}\n{text[-3000:]}"


def test_masking_keeps_what_helps_reading_a_log() -> None:
    from server.core.logs import mask_secrets

    assert mask_secrets('"GET /q/eyJh.eyJ0.c2ln?from=wechat HTTP/1.1" 200') == '"GET /q/***?from=wechat HTTP/1.1" 200'
    assert mask_secrets("/activate?code=na0o6x&next=/me") == "/activate?code=***&next=/me"
    assert mask_secrets("/api/v1/members?q=11010519491231002x&limit=5") == "/api/v1/members?q=**************002x&limit=5"
    # Phones, ids, timestamps and ordinary paths stay as they are.
    for kept in ("/api/v1/members/41", "phone 13900000001", "at 1795289400123", "/api/v1/activities?station_id=2"):
        assert mask_secrets(kept) == kept
