"""The check-in writer process (SQLite, started by ``serve``): web workers forward members'
check-ins to it, and judge them themselves whenever it cannot answer — so a check-in is never lost
or doubled whether the writer is there, gone, or back."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec

from server.checkins import fastlane
from server.checkins import writer as writer_module
from server.checkins.writer import WriterClient, serve_writer
from server.keys.keyring import KeyRing
from server.keys.tokens import TokenService
from tests.conftest import ROOT, World, new_uuid, now_iso, run_cli

sys.path.insert(0, str(ROOT / "scripts"))
from _faults import ServerProcess  # noqa: E402


async def test_check_ins_go_through_the_writer_and_are_judged_here_when_it_is_gone(world: World) -> None:
    address = f"@hongyi-test-writer-{secrets.token_hex(6)}"
    writer = await serve_writer(world.ctx, address)
    client = world.ctx.checkin_writer = WriterClient(address)
    try:
        staff = await world.staff_a()
        url = (await staff.get(f"/api/v1/activities/{world.ids['first_activity']}/qr")).json()["url"]
        first, second = await world.member(1), await world.member(2)

        single = await first.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()})
        assert (single.status_code, single.json()["status"], single.json()["points_awarded"]) == (200, "accepted", 1)
        assert single.headers["x-content-type-options"] == "nosniff"  # the same answer as ever
        batch = await second.post("/api/v1/checkins/sync", json={"items": [
            {"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(-30)},
            {"client_uuid": new_uuid(), "token": "不是二维码", "scanned_at": now_iso()},
        ]})
        assert [r["status"] for r in batch.json()["results"]] == ["accepted", "rejected"]
        forged = await first.post("/api/v1/checkins", json={"client_uuid": new_uuid(), "token": url + "x", "scanned_at": now_iso()})
        assert forged.status_code == 422 and forged.json()["reason"] == "malformed"
        assert client.answered == 3

        # What the writer cannot decode goes back to the worker's ordinary handler: the usual 400.
        bad = await first.post("/api/v1/checkins", json={"client_uuid": 5, "token": url, "scanned_at": now_iso()})
        assert bad.status_code == 400 and bad.json()["code"] and "detail" in bad.json()
        assert client.answered == 3

        # The writer goes away: the worker judges check-ins itself, exactly once.
        writer.close()
        await writer.wait_closed()
        client.close()
        again = {"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()}
        third = await world.member(3)
        alone = await third.post("/api/v1/checkins", json=again)
        assert (alone.status_code, alone.json()["status"]) == (200, "accepted")
        replay = await third.post("/api/v1/checkins", json=again)
        assert replay.json()["checkin_id"] == alone.json()["checkin_id"]
        assert client.answered == 3
        member_3 = await world.member_id(3)
        assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", member_3) == 1
        assert await world.count("SELECT COUNT(*) FROM points_ledger WHERE member_id = $1", member_3) == 1
    finally:
        world.ctx.checkin_writer = None
        client.close()
        writer.close()


async def test_the_writer_answers_a_turn_before_it_judges_the_next(world: World) -> None:
    """Requests arriving together are judged in turns: a turn's answers are on their way to the
    worker before the next turn is judged, so the worker has answers to send to its clients while
    the writer works (all at once, the two processes took turns at being idle)."""
    staff = await world.staff_a()
    url = (await staff.get(f"/api/v1/activities/{world.ids['first_activity']}/qr")).json()["url"]
    member_id = await world.member_id(1)
    org_path = await world.ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member_id)
    sides: list[writer_module._WriterSide] = []
    writes_seen: list[int] = []  # per request judged: the writer's answer writes so far
    writes = [0]

    async def judged_here(ctx: object, who: object, body: bytes) -> object:
        side = sides[0]
        if not writes_seen:  # count the writer's writes to the worker from the first request on
            write = side.transport.write  # type: ignore[union-attr]

            def counted(data: bytes) -> None:
                writes[0] += 1
                write(data)

            side.transport.write = counted  # type: ignore[union-attr, method-assign]
        writes_seen.append(writes[0])
        return await fastlane.answer_single(ctx, who, body)

    def side_factory() -> writer_module._WriterSide:
        sides.append(writer_module._WriterSide(world.ctx, (judged_here, fastlane.answer_sync)))
        return sides[-1]

    address = f"@hongyi-test-writer-{secrets.token_hex(6)}"
    server = await asyncio.get_running_loop().create_unix_server(side_factory, writer_module.socket_address(address))
    client = WriterClient(address)
    try:
        assert await client._connect() is not None  # so that every request goes out in one write
        requests = 2 * writer_module.TURN + 5
        bodies = [msgspec.json.encode({"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()}) for _ in range(requests)]
        answers = await asyncio.gather(*(client.call(0, (member_id, org_path, "normal"), body) for body in bodies))
        statuses = [msgspec.json.decode(payload)["status"] for _, payload in answers]  # type: ignore[index]
        assert sorted(statuses) == ["accepted"] + ["duplicate"] * (requests - 1)
        turn = writer_module.TURN
        assert writes_seen[:turn] == [0] * turn  # the first turn, judged together
        assert writes_seen[turn] >= 1 and writes_seen[2 * turn] >= 2  # each next one after the last was answered
        assert await world.count("SELECT COUNT(*) FROM checkins WHERE member_id = $1", member_id) == 1
        assert await world.count("SELECT COUNT(*) FROM checkin_attempts WHERE member_id = $1", member_id) == requests
    finally:
        client.close()
        server.close()


def _writer_pids(serve_pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(serve_pid), "-f", "checkin-writer"], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_serve_runs_the_writer_restarts_it_and_stops_it(tmp_path: Path) -> None:
    """SQLite: serve starts the writer; a rule edit reaches it at once; kill -9 of the writer loses
    no check-in (the worker judges it) and serve starts a new one; stopping serve stops it."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'hongyi.db'}", "HONGYI_KEY_FILE": str(tmp_path / "keys.json"),
        "HONGYI_PWA_DIST": str(tmp_path / "no-pwa"), "REDIS_URL": "",
    }
    assert run_cli("migrate", env=env).returncode == 0
    assert run_cli("seed-demo", env=env).returncode == 0
    server = ServerProcess(env, tmp_path / "server.log")
    server.start()
    try:
        assert server.proc is not None
        _wait_for(lambda: len(_writer_pids(server.proc.pid)) == 1)
        [writer] = _writer_pids(server.proc.pid)
        http = httpx.Client(base_url=server.url, timeout=30)

        tokens = TokenService(KeyRing.load_or_create(tmp_path / "keys.json"), "http://127.0.0.1:8000")
        users = dict(sqlite3.connect(tmp_path / "hongyi.db").execute("SELECT phone, id FROM users").fetchall())

        def login(phone: str) -> dict[str, str]:  # demo members have no password yet: a token of the server's key
            return {"authorization": f"Bearer {tokens.access_token(users[phone], 15)[0]}"}

        admin = login("13800000000")
        open_now = http.get("/api/v1/activities", params={"status": "open"}, headers=admin).json()
        theme_day = next(a for a in open_now if a["type"] == "theme_day")
        url = http.get(f"/api/v1/activities/{theme_day['id']}/qr", headers=admin).json()["url"]

        def check_in(phone: str) -> dict[str, object]:
            body = {"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso()}
            answer = http.post("/api/v1/checkins", json=body, headers=login(phone))
            assert answer.status_code == 200, answer.text
            return answer.json()

        first = check_in("13900000001")
        assert (first["status"], first["points_awarded"]) == ("accepted", 1)
        # The writer has the rule cached now; an edit in the web worker must reach it at once.
        rule = next(r for r in http.get("/api/v1/points/rules", headers=admin).json() if r["code"] == "attend_theme_day")
        assert http.patch(f"/api/v1/points/rules/{rule['id']}", json={"points": 3}, headers=admin).status_code == 200
        second = check_in("13900000002")
        assert (second["status"], second["points_awarded"]) == ("accepted", 3)

        os.kill(writer, signal.SIGKILL)
        third = check_in("13900000003")  # judged by the worker while no writer listens (or by the new one)
        assert third["status"] == "accepted"
        _wait_for(lambda: len(_writer_pids(server.proc.pid)) == 1 and _writer_pids(server.proc.pid) != [writer])
        assert "restarting" in (tmp_path / "server.log").read_text()
        fourth = check_in("13900000004")
        assert fourth["status"] == "accepted"
        serve_pid = server.proc.pid
        [restarted] = _writer_pids(serve_pid)
    finally:
        server.stop()
    _wait_for(lambda: not Path(f"/proc/{restarted}").exists(), 10)
