"""The SQLite single writer (group commit, savepoints, failures) and the shared rate limiter."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.core.db import DatabaseUnavailable, SQLiteDatabase
from server.core.ratelimit import MemoryLimiter, RedisLimiter
from tests.conftest import _settings, new_uuid, now_iso


@pytest.fixture
async def db(tmp_path: Path):
    database = SQLiteDatabase(tmp_path / "w.db")
    await database.start()
    await database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    yield database
    await database.close()


async def test_concurrent_units_share_one_commit(db: SQLiteDatabase) -> None:
    commits: list[str] = []
    assert db._writer is not None
    db._writer.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    async def unit(i: int) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (v) VALUES ($1)", f"v{i}")

    await asyncio.gather(*(unit(i) for i in range(200)))
    assert await db.fetchval("SELECT COUNT(*) FROM t") == 200
    assert 1 <= len(commits) < 20  # grouped, not one COMMIT per unit


async def test_units_queued_behind_a_slow_one_still_share_commits(db: SQLiteDatabase) -> None:
    """A unit that really waits mid-way makes the others queue for the writer; they must not then
    commit one by one (asyncio.Lock lets one waiter in per loop turn), or every later unit under
    load would too."""
    commits: list[str] = []
    assert db._writer is not None
    db._writer.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    async def slow() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (v) VALUES ('slow')")
            await asyncio.sleep(0.05)

    async def unit(i: int) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (v) VALUES ($1)", f"v{i}")

    first = asyncio.create_task(slow())
    await asyncio.sleep(0.01)
    await asyncio.gather(first, *(unit(i) for i in range(200)))
    assert await db.fetchval("SELECT COUNT(*) FROM t") == 201
    from server.core.db import GROUP_MAX_UNITS

    assert 1 <= len(commits) <= 201 // GROUP_MAX_UNITS + 3, len(commits)  # a convoy: ≈ 200


async def test_the_wal_is_started_over_under_a_steady_stream_of_writes(db: SQLiteDatabase, monkeypatch) -> None:
    """Without a pause between groups SQLite never rewinds the WAL: under load the file grew by the
    size of every write (≈ 50 MB/s), for as long as the load lasted. Started over, it is cut back
    to the configured size again and again."""
    import server.core.db as dbmod

    monkeypatch.setattr(dbmod, "WAL_RESET_FRAMES", 200)  # ≈ 800 KiB of 4 KiB pages
    assert db._writer is not None
    db._writer.execute("PRAGMA journal_size_limit = 1000000")  # what a reset cuts the file back to
    wal = Path(f"{db.path}-wal")
    payload = "x" * 3000
    rows = cut_back = 0
    last_size = 0
    stop = asyncio.get_running_loop().time() + 2.0

    async def writer(k: int) -> None:
        nonlocal rows, cut_back, last_size
        i = 0
        while asyncio.get_running_loop().time() < stop:
            async with db.transaction():
                await db.execute("INSERT INTO t (v) VALUES ($1)", f"{k}-{i}-{payload}")
            rows += 1
            i += 1
            size = wal.stat().st_size
            cut_back += size < last_size
            last_size = size

    await asyncio.gather(*(writer(k) for k in range(16)))
    assert rows * 3000 > 20_000_000
    assert cut_back >= 2, (cut_back, rows)
    assert await db.fetchval("SELECT COUNT(*) FROM t") == rows


async def test_two_writers_on_one_file_take_turns(db: SQLiteDatabase, tmp_path: Path) -> None:
    """Several worker processes share one SQLite file: each has its own writer and the file lock
    makes them take turns (flock locks belong to the open file, so two instances in one process
    contend exactly like two processes). Without it the second BEGIN IMMEDIATE would block the
    event loop in SQLite's busy handler while the first group waits for that same loop to commit."""
    other = SQLiteDatabase(tmp_path / "w.db")
    await other.start()
    for database in (db, other):  # a regression then fails fast instead of sleeping in the busy handler
        assert database._writer is not None
        database._writer.execute("PRAGMA busy_timeout = 200")
    try:
        async def unit(database: SQLiteDatabase, i: int) -> None:
            async with database.transaction():
                await database.execute("INSERT INTO t (v) VALUES ($1)", f"v{i}")
                await asyncio.sleep(0)  # a unit that awaits mid-way keeps its group open longer
                if i % 10 == 0:  # a failing unit must not keep the lock from the other process
                    await database.execute("INSERT INTO t (v) VALUES ($1)", f"v{i}")

        started = asyncio.get_running_loop().time()
        results = await asyncio.wait_for(
            asyncio.gather(*(unit(db if i % 2 else other, i) for i in range(400)), return_exceptions=True), timeout=20,
        )
        elapsed = asyncio.get_running_loop().time() - started
        failed = [r for r in results if r is not None]
        assert len(failed) == 40 and all(isinstance(r, sqlite3.IntegrityError) for r in failed)
        assert await db.fetchval("SELECT COUNT(*) FROM t") == 360
        assert await other.fetchval("SELECT COUNT(DISTINCT v) FROM t") == 360
        assert db._shared or other._shared  # they met: from then on a group never waits for the next loop turn
        assert elapsed < 5  # turns, not busy-handler timeouts
    finally:
        await other.close()


async def test_failing_unit_rolls_back_only_itself(db: SQLiteDatabase) -> None:
    async def good(i: int) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (v) VALUES ($1)", f"good{i}")

    async def bad() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (v) VALUES ('half')")
            await db.execute("INSERT INTO t (v) VALUES ('half')")  # unique violation

    results = await asyncio.gather(good(1), bad(), good(2), return_exceptions=True)
    assert isinstance(results[1], sqlite3.IntegrityError) and results[0] is None and results[2] is None
    rows = {r[0] for r in await db.fetch("SELECT v FROM t")}
    assert rows == {"good1", "good2"}


async def test_none_and_dates_are_stored_as_null_and_iso_text(db: SQLiteDatabase) -> None:
    """The parameters most rows carry: None is NULL (not the text 'None'), a date its ISO form, a
    datetime Piccolo's UTC text — whatever adapters make binding them cheap."""
    from datetime import UTC, date, datetime, timedelta, timezone

    await db.execute("CREATE TABLE p (a, b, c, d)")
    beijing = datetime(2026, 11, 22, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    await db.executemany("INSERT INTO p (a, b, c, d) VALUES ($1, $2, $3, $4)", [(None, date(2026, 11, 22), beijing, True)])
    await db.execute("INSERT INTO p (a, b, c, d) VALUES ($1, $2, $3, $4)", None, date(2026, 1, 5), None, False)
    rows = await db.fetch("SELECT typeof(a), a, b, c, d FROM p ORDER BY rowid")
    assert [tuple(r) for r in rows] == [
        ("null", None, "2026-11-22", str(beijing.astimezone(UTC)), 1),
        ("null", None, "2026-01-05", None, 0),
    ]


async def test_reads_see_only_committed_data(db: SQLiteDatabase) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (v) VALUES ('pending')")
            started.set()
            await release.wait()  # a unit that awaits: the group cannot commit yet

    task = asyncio.create_task(slow_writer())
    await started.wait()
    assert await db.fetchval("SELECT COUNT(*) FROM t") == 0
    release.set()
    await task
    assert await db.fetchval("SELECT COUNT(*) FROM t") == 1


async def test_disk_full_is_database_unavailable_and_nothing_half_written(db: SQLiteDatabase) -> None:
    assert db._writer is not None
    pages = db._writer.execute("PRAGMA page_count").fetchone()[0]
    db._writer.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(DatabaseUnavailable):
        async with db.transaction():
            await db.execute("INSERT INTO t (v) VALUES ($1)", "x" * 100_000)
    assert await db.fetchval("SELECT COUNT(*) FROM t") == 0


async def test_full_disk_gives_503_over_http_and_no_checkin(sqlite_template: Path, key_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    shutil.copy(sqlite_template, path)
    app = create_app(_settings(f"sqlite:///{path}", key_file))
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        from server.seed import _seed

        ctx = app.state.ctx
        ids = await _seed(ctx)
        url = ctx.tokens.qr_url(ctx.tokens.station_token(ids["station_b"], 1))
        user_id = await ctx.db.fetchval("SELECT id FROM users WHERE member_id = $1", ids["first_member"])
        access, _ = ctx.tokens.access_token(int(user_id), 5)
        writer = ctx.db._writer
        # The disk is full: no page may be added to the file any more.
        writer.execute(f"PRAGMA max_page_count = {writer.execute('PRAGMA page_count').fetchone()[0]}")
        items = [{"client_uuid": new_uuid(), "token": url, "scanned_at": now_iso(-i)} for i in range(400)]
        response = await client.post("/api/v1/checkins/sync", json={"items": items}, headers={"authorization": f"Bearer {access}"})
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable" and "数据库" in response.json()["detail"]
        assert response.headers["retry-after"] == "5"
        for table in ("checkins", "checkin_attempts", "points_ledger"):
            assert writer.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
        # Space again: the same batch goes through, exactly once.
        writer.execute("PRAGMA max_page_count = 1073741823")
        retry = await client.post("/api/v1/checkins/sync", json={"items": items}, headers={"authorization": f"Bearer {access}"})
        assert retry.status_code == 200
        assert writer.execute("SELECT COUNT(*) FROM checkin_attempts").fetchone()[0] == 400


async def test_memory_limiter_counts_per_key() -> None:
    limiter = MemoryLimiter()
    assert all([await limiter.hit("a", 3) for _ in range(3)])
    assert not await limiter.hit("a", 3)
    assert await limiter.hit("b", 3)


async def test_redis_limiter_is_shared_between_workers() -> None:
    url = os.environ.get("HONGYI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    one, two = RedisLimiter(url), RedisLimiter(url)
    key = f"test:{new_uuid()}"
    try:
        await one._redis.ping()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"no Redis at {url}")
    try:
        assert await one.hit(key, 2) and await two.hit(key, 2)
        assert not await one.hit(key, 2) and not await two.hit(key, 2)
    finally:
        await one.close()
        await two.close()


async def test_piccolo_queries_run_through_the_app_connections(world) -> None:
    """Piccolo (schema, migrations, occasional queries) shares the single writer / the pool: a Piccolo
    write inside a unit is part of that unit and rolls back with it."""
    from server.members.tables import Member

    member_id = world.ids["first_member"]

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with world.ctx.db.transaction():
            await Member.update({Member.card_version: 99}).where(Member.id == member_id)
            assert await world.ctx.db.fetchval("SELECT card_version FROM members WHERE id = $1", member_id) == 99
            raise Abort
    row = await Member.select(Member.card_version, Member.name).where(Member.id == member_id).first()
    assert row == {"card_version": 1, "name": "王建国"}
    await Member.update({Member.card_version: 2}).where(Member.id == member_id)  # a write outside a unit makes its own
    assert await world.ctx.db.fetchval("SELECT card_version FROM members WHERE id = $1", member_id) == 2
