"""Faults: kill -9 of a live server in the middle of 500-item syncs, the same batch from 20 clients at
once (both against a real ``python -m server serve`` in its own process group, on the test SQLite
file or the test PostgreSQL database), PostgreSQL crashing under a running app (a throw-away
cluster of our own), and a SQLite file that is read-only — for the kernel, so even to root —
under a running server or from its start.

"Exactly once", checked after every batch has been replayed: one ``checkins`` row per item, one
``checkin_attempts`` row per (client_uuid, member) pointing at it (DESIGN §4: a replay answers the
stored result and stores nothing new), one ``points_ledger`` entry per check-in, and every member's
tally (at the root org) equal to their ledger sum. Longer runs: scripts/fault_kill.py (many kill
rounds) and scripts/fault_pg_restart.py (PostgreSQL crashing under sync load, two workers).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.core.db import Database, create_database
from server.core.context import open_context
from server.settings import Settings
from tests.conftest import ROOT, _settings, has_chinese, run_cli

sys.path.insert(0, str(ROOT / "scripts"))
from _bench_common import (  # noqa: E402
    PG_BIN,
    Processes,
    SyncStreet,
    ThrowawayPostgres,
    build_sync_street,
    exactly_once_problems,
)
from _faults import SYNC, Peek, ServerProcess, kill_round, post_batch, results_by_uuid  # noqa: E402


async def assert_exactly_once(db: Database, street: SyncStreet, answers: dict[str, dict[str, Any]]) -> None:
    problems = await exactly_once_problems(db, street, answers)
    assert not problems, problems


# --------------------------------------------------------------------------- a live server


@pytest.fixture
def live(settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "DATABASE_URL": settings.database_url, "HONGYI_KEY_FILE": str(settings.key_file),
        "PUBLIC_BASE_URL": settings.public_base_url, "HONGYI_PWA_DIST": str(settings.pwa_dist),
    }
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.procs.stop_all()


# --------------------------------------------------------------------------- kill -9


ROUNDS = 2
SPARE_ROUNDS = 2  # rounds whose kill did not land mid-way are run again, this many at most
MEMBERS_PER_ROUND = 8
CLIENTS = 3


async def test_kill_9_in_the_middle_of_syncs_then_replay_gives_each_item_exactly_once(
    settings: Settings, live: ServerProcess
) -> None:
    """Each round: start the server; three phones sync the new members' 500-item batches one after
    another, mixed with replays of every earlier batch; once a random 1–3 of the new batches are
    committed (+ 0–20 ms) kill -9 the server group, so batches are in flight, some committed, some
    not. At the end: restart, replay everything, check exactly once, and that every reply a phone
    got before a kill is what the replay answers. scripts/fault_kill.py: more rounds, other moments."""
    async with open_context(settings) as ctx:
        street = await build_sync_street(ctx, (ROUNDS + SPARE_ROUNDS) * MEMBERS_PER_ROUND)
    rng = random.Random()
    answers: dict[str, dict[str, Any]] = {}  # results phones received before a kill
    rounds: list[Any] = []
    async with Peek(settings.database_url) as peek:
        # A round counts when the kill lands mid-way: some new batches committed, some not, requests
        # cut off. Now and then it lands just after a group's answers, before the phones' next
        # requests are on the wire (nothing cut): that round is still checked below, and one more runs.
        while sum(r.mid_way for r in rounds) < ROUNDS and len(rounds) < ROUNDS + SPARE_ROUNDS:
            start = len(rounds) * MEMBERS_PER_ROUND
            new = street.members[start:start + MEMBERS_PER_ROUND]
            result = await kill_round(live, street, peek, new, CLIENTS, rng, "commits", answers)
            assert not result.errors, result.errors
            rounds.append(result)
    assert sum(r.mid_way for r in rounds) >= ROUNDS, rounds

    live.start()
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        replays = await asyncio.gather(*(post_batch(client, street, key) for key in street.batches))
    final: dict[str, dict[str, Any]] = {}
    for reply in replays:
        assert reply.status_code == 200, reply.text
        final.update(results_by_uuid(reply))
    for client_uuid, before in answers.items():
        assert final[client_uuid] == before  # an answer given before the kill is what the replay gives
    live.stop()
    db = create_database(settings)
    await db.start()
    try:
        await assert_exactly_once(db, street, final)
    finally:
        await db.close()


# --------------------------------------------------------------------------- 20 clients


async def test_the_same_batch_from_20_clients_at_once_is_stored_exactly_once(settings: Settings, live: ServerProcess) -> None:
    """The page, the service worker and a dozen retries of one phone, all at once (each in its own
    item order), spread over two server processes: every client gets 500 results that match the one
    stored row per item."""
    async with open_context(settings) as ctx:
        street = await build_sync_street(ctx, 1)
    member_id = street.members[0]
    items = street.batch(member_id)
    live.workers = 2  # two processes race, too (SQLite: one writer at a time across them)
    live.start()
    orders = [random.sample(items, len(items)) for _ in range(20)]
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as client:
        replies = await asyncio.gather(*(
            client.post(SYNC, content=street.body(member_id, items=order), headers=street.headers(member_id)) for order in orders
        ))
    results: dict[str, dict[str, Any]] | None = None
    for order, reply in zip(orders, replies):
        assert reply.status_code == 200, reply.text
        got = reply.json()["results"]
        assert [r["client_uuid"] for r in got] == [i["client_uuid"] for i in order]  # in the order sent
        results = results or results_by_uuid(reply)
        assert results_by_uuid(reply) == results  # every client was told the same
    assert results is not None
    live.stop()
    db = create_database(settings)
    await db.start()
    try:
        await assert_exactly_once(db, street, results)
    finally:
        await db.close()


# --------------------------------------------------------------------------- PostgreSQL crashes


async def test_postgresql_crash_is_503_meanwhile_and_the_server_recovers_by_itself(key_file: Path) -> None:
    """A PostgreSQL of our own (initdb on a free port; the shared one is never touched), SIGKILLed
    with all its backends under a running app: a sync, a member read and the health check answer
    503 (never 500); after the restart (WAL recovery) the app needs no restart: the phone's batch
    goes through, and a replay of the batch stored before the crash changes nothing.
    scripts/fault_pg_restart.py does the same under load, with two workers."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL programs not in {PG_BIN} (HONGYI_PG_BIN)")
    workdir = Path(tempfile.mkdtemp(prefix="hongyi-test-pg-"))  # not tmp_path: the postgres user must reach it
    procs = Processes()
    cluster = ThrowawayPostgres(procs, workdir)
    try:
        await asyncio.to_thread(cluster.init)
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(cluster.create_database, "hongyi")
        url = cluster.url("hongyi")
        done = await asyncio.to_thread(run_cli, "migrate", env={"DATABASE_URL": url, "HONGYI_KEY_FILE": str(key_file)})
        assert done.returncode == 0, done.stderr + done.stdout
        app = create_app(_settings(url, key_file))
        async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            ctx = app.state.ctx
            street = await build_sync_street(ctx, 2, activities=100)
            before, during = street.members
            stored = await client.post(SYNC, content=street.body(before), headers=street.headers(before))
            assert stored.status_code == 200, stored.text

            def sync() -> Any:
                return client.post(SYNC, content=street.body(during), headers=street.headers(during))

            in_flight = asyncio.create_task(sync())
            await asyncio.sleep(random.uniform(0, 0.03))
            await asyncio.to_thread(cluster.crash, "kill")
            if (await in_flight).status_code != 200:  # 200 only if it was committed before the crash
                assert_database_unavailable(in_flight.result())
            assert_database_unavailable(await sync())
            assert_database_unavailable(await client.get("/api/v1/me/points", headers=street.headers(during)))
            health = await client.get("/api/v1/health")
            assert health.status_code == 503 and health.json()["database"] == "unavailable"

            # Back (WAL recovery first): asked all along, the app answers 503 until it can, then 200.
            starting = asyncio.create_task(asyncio.to_thread(cluster.start))
            answers: list[int] = []
            while True:
                reply, read = await sync(), await client.get("/api/v1/me/points", headers=street.headers(during))
                for response in (reply, read):
                    answers.append(response.status_code)
                    if response.status_code != 200:
                        assert_database_unavailable(response)
                if reply.status_code == 200 and read.status_code == 200 and starting.done():
                    break
                assert len(answers) < 1000, "no recovery"
                await asyncio.sleep(0.02)
            await starting
            assert 503 in answers  # asked while it was still down or starting up
            replay = await client.post(SYNC, content=street.body(before), headers=street.headers(before))
            assert replay.json() == stored.json()
            await assert_exactly_once(ctx.db, street, {**results_by_uuid(stored), **results_by_uuid(reply)})
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- read-only SQLite file


def _chattr(flag: str, paths: list[Path]) -> bool:
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    done = subprocess.run([chattr, flag, *map(str, paths)], capture_output=True, text=True)
    return done.returncode == 0


@contextmanager
def read_only(paths: list[Path], *, open_files: bool) -> Iterator[None]:
    """Make ``paths`` read-only the way a real deployment meets it. The immutable attribute
    (``chattr +i``, ext4/xfs/btrfs, needs CAP_LINUX_IMMUTABLE) stops writes even by root and even
    through descriptors opened before — what a file system remounted read-only does to a running
    server. Without it, a non-root process can use plain permissions, which only bind new opens
    (``open_files=False``: a server started on the file)."""
    if _chattr("+i", paths):
        try:
            yield
        finally:
            assert _chattr("-i", paths), "could not clear the immutable attribute"
        return
    if open_files or os.geteuid() == 0:
        pytest.skip("needs chattr +i (root with CAP_LINUX_IMMUTABLE on ext4/xfs/btrfs) to make the file read-only")
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(0o444)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "database_unavailable" and has_chinese(body["detail"]), body
    assert response.headers["retry-after"] == "5"


async def _nothing_written(db: Database) -> None:
    for table in ("checkins", "checkin_attempts", "points_ledger"):
        assert await db.fetchval(f"SELECT COUNT(*) FROM {table}") == 0, table
    assert await db.fetchval("SELECT COUNT(*) FROM points_tally WHERE earned <> 0") == 0


async def test_sqlite_file_turning_read_only_under_a_running_server_is_503_and_nothing_half_written(
    sqlite_template: Path, key_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "ro.db"
    shutil.copy(sqlite_template, path)
    app = create_app(_settings(f"sqlite:///{path}", key_file))
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ctx = app.state.ctx
        street = await build_sync_street(ctx, 1)
        member_id = street.members[0]
        wal = path.with_name(path.name + "-wal")
        assert wal.exists()  # WAL mode: commits go there first
        with read_only([path, wal], open_files=True):
            full = await client.post(SYNC, content=street.body(member_id), headers=street.headers(member_id))
            assert_database_unavailable(full)
            one = await client.post("/api/v1/checkins", json=street.batch(member_id)[0], headers=street.headers(member_id))
            assert_database_unavailable(one)
            mine = await client.get("/api/v1/me/checkins", headers=street.headers(member_id))
            assert mine.status_code == 200 and mine.json() == []  # reads are still served
        await _nothing_written(ctx.db)
        # Writable again: the same server takes the same batch, exactly once.
        retry = await client.post(SYNC, content=street.body(member_id), headers=street.headers(member_id))
        assert retry.status_code == 200, retry.text
        await assert_exactly_once(ctx.db, street, results_by_uuid(retry))


async def test_server_started_on_a_read_only_sqlite_file_serves_reads_and_answers_503_to_writes(
    sqlite_template: Path, key_file: Path, tmp_path: Path
) -> None:
    """E.g. a restored backup owned by another user, or a volume mounted read-only: the server starts,
    reads work, writes are 503; once the file is writable and the server restarted, the batch the
    phone kept is stored exactly once."""
    path = tmp_path / "ro.db"
    shutil.copy(sqlite_template, path)
    settings = _settings(f"sqlite:///{path}", key_file)
    async with open_context(settings) as ctx:
        street = await build_sync_street(ctx, 1)
    member_id = street.members[0]
    headers = street.headers(member_id)
    with read_only([path], open_files=False):
        app = create_app(settings)
        async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            points = await client.get("/api/v1/me/points", headers=headers)
            assert points.status_code == 200 and points.json()["earned"] == 0
            assert_database_unavailable(await client.post(SYNC, content=street.body(member_id), headers=headers))
            await _nothing_written(app.state.ctx.db)
    app = create_app(settings)
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        retry = await client.post(SYNC, content=street.body(member_id), headers=headers)
        assert retry.status_code == 200, retry.text
        await assert_exactly_once(app.state.ctx.db, street, results_by_uuid(retry))
