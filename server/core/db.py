"""One connection manager per engine; every query of the app goes through it.

SQLite: one writer connection, used only by one write unit at a time (an ``asyncio.Lock``), with
group commit — every unit runs in its own SAVEPOINT inside a shared ``BEGIN IMMEDIATE`` transaction
that is committed once at the end of the current event-loop turn, and each unit's caller is released
only after that COMMIT. Statements run on the event-loop thread: they take microseconds, and a
writer thread would spend more on GIL hand-offs than it saves. Reads use one persistent read-only
connection (WAL: readers never block the writer). So concurrent requests never see "database is
locked" and no connection is opened per query.

Several worker processes on one SQLite file: each has its own writer, and a group holds an
exclusive ``flock`` on ``<db>-writer.lock`` from BEGIN to COMMIT, so there is still one writer at a
time. A process that finds the lock taken waits for it in a thread (the kernel wakes it at once)
while its event loop goes on serving reads and parsing requests — instead of SQLite's busy handler,
which would sleep on the event loop in growing steps.

PostgreSQL: one asyncpg pool; a write unit is a pool connection in a transaction.

SQL is written once with ``$1`` placeholders; for SQLite they become ``?1`` (numbered, same meaning).
Piccolo queries are routed here too (see ``server.core.engines``), so they join the current unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import piccolo.engine.sqlite  # noqa: F401  (registers the sqlite3 adapters/converters Piccolo's schema relies on)


# Piccolo's sqlite3 converters go through a generic bytes/str wrapper, and INTEGER through
# ``Decimal``: ~2 µs a value, paid for every integer and timestamp any query reads or writes.
# These give the same values (same storage format, same results) at a fraction of the cost.
def _int_out(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:  # '1.0' and the like, as Piccolo accepts them
        return int(Decimal(value.decode()))


@functools.lru_cache(maxsize=4096)
def _timestamptz_out(value: bytes) -> datetime:
    """Remembered: an activity's window and times are read back with every check-in to it."""
    return datetime.fromisoformat(value.decode()).replace(tzinfo=UTC)


def _boolean_out(value: bytes) -> bool:
    return value == b"1"


_DATETIME_TEXT: dict[datetime, str] = {}


def _datetime_in(value: datetime) -> str:
    """Piccolo's format (UTC, ``str(datetime)``). Remembered for fixed offsets (what clients send
    and ``utcnow()`` makes): one check-in writes the same two or three instants into several rows.
    Not for zones with DST, whose equal-comparing ``fold`` twins are different instants."""
    tz = value.tzinfo
    if tz is not None and type(tz) is not timezone:
        return value.astimezone(UTC).isoformat(" ")
    text = _DATETIME_TEXT.get(value)
    if text is None:
        text = (value if tz is None or tz is UTC else value.astimezone(UTC)).isoformat(" ")
        if len(_DATETIME_TEXT) >= 4096:
            _DATETIME_TEXT.clear()
        _DATETIME_TEXT[value] = text
    return text


sqlite3.register_converter("INTEGER", _int_out)
sqlite3.register_converter("TIMESTAMPTZ", _timestamptz_out)
sqlite3.register_converter("BOOLEAN", _boolean_out)
sqlite3.register_adapter(datetime, _datetime_in)
# sqlite3 passes every parameter that is not an int, float or str through its adapter search — None
# too — and, finding no adapter registered, looks up ``__adapt__`` and ``__conform__``, raising and
# swallowing an AttributeError with a formatted message each time. A check-in binds about eleven
# Nones: this search was ≈ 7 % of the instructions of a 500-item sync (callgrind). Registered adapters
# end the search at once: C callables giving the same values (``{}.get(None)`` is None, bound as
# NULL; ``date.isoformat`` is what Piccolo's Python adapter returns for a date).
sqlite3.register_adapter(type(None), {}.get)
sqlite3.register_adapter(date, date.isoformat)


class DatabaseUnavailable(Exception):
    """The database cannot take writes (disk full, read-only file, server down)."""


_PLACEHOLDER = re.compile(r"\$(\d+)")


class Database:
    dialect: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def fetch_planned(self, sql: str, *args: Any) -> list[Any]:
        """Like ``fetch``, but planned for these very arguments every time (reports: their best plan
        depends on the period and scope). Same as ``fetch`` on SQLite, which plans every run."""
        return await self.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> None:
        raise NotImplementedError

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def lock_member(self, member_id: int) -> None:
        """Serialise writes for one member inside the current transaction (no-op on SQLite)."""

    async def lock_activity(self, activity_id: int) -> None:
        """Serialise check-ins to one activity (capacity); always taken after the member lock."""

    async def lock_closing(self, activity_id: int) -> None:
        """Serialise closing one activity (taken before any member lock; a key of its own). On
        PostgreSQL it also waits for check-ins that hold the activity open (``hold_open``) to commit."""

    async def lock_activity_edit(self, activity_id: int) -> None:
        """Serialise changing one activity: an edit and a close (a key of its own, taken by a close
        after ``lock_closing`` and before any member lock, by an edit alone)."""

    async def hold_open(self, statuses: dict[int, str]) -> dict[int, str]:
        """Activities' statuses (by id) as a check-in may rely on until its transaction ends;
        ``statuses`` is what the transaction has read. SQLite: those — write units are serial, so
        a close cannot commit in between."""
        return dict(statuses)

    async def run_piccolo(self, sql: str, args: list[Any], query_type: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def in_transaction(self) -> bool:
        raise NotImplementedError


# --------------------------------------------------------------------------- SQLite


def _sqlite_sql(sql: str, cache: dict[str, str] = {}) -> str:  # noqa: B006  (deliberate memo)
    out = cache.get(sql)
    if out is None:
        out = cache[sql] = _PLACEHOLDER.sub(r"?\1", sql)
    return out


def _open_sqlite(path: Path, *, readonly: bool, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path),
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,
        detect_types=sqlite3.PARSE_DECLTYPES,
        timeout=10.0,
        cached_statements=512,
    )
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB page cache
    conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


# The WAL is started over (``SQLiteDatabase._restart_wal``) once it holds this many frames (16 MiB
# of 4 KiB pages), and cut back to WAL_KEEP_BYTES then.
WAL_RESET_FRAMES = 4096
WAL_KEEP_BYTES = 64 * 1024 * 1024
# A group commits once no unit waits for the writer — or once it holds this many units. Its callers
# hear back only after the COMMIT, so a smaller group lets answers flow while the next group is
# written. (The check-in writer process bounds its groups itself: ``checkins.writer.TURN``.)
GROUP_MAX_UNITS = 32


def _checkpoint(conn: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
    return conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()


def _wait_until_free(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_SH)
    fcntl.flock(fd, fcntl.LOCK_UN)


_SQLITE_UNAVAILABLE = ("disk", "readonly", "read-only", "full", "unable to open", "locked", "I/O")


def _is_unavailable(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and any(word in text for word in _SQLITE_UNAVAILABLE)


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._current: ContextVar[sqlite3.Connection | None] = ContextVar("sqlite_current", default=None)
        self._group: asyncio.Future[None] | None = None
        self._commit_scheduled = False
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._file_lock: int | None = None  # fd of ``<db>-writer.lock``
        self._file_locked = False
        self._shared = False  # another process has been seen writing to the same file
        self._restart_wanted = False  # set by the checkpoint thread when the WAL has grown long
        self._rewinder: sqlite3.Connection | None = None  # catches the checkpoint up for ``_restart_wal``
        self._waiting = 0  # units waiting for ``self._lock``
        self._group_units = 0  # units in the open group

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file_lock = os.open(f"{self.path}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:  # a read-only directory: no process can write anyway, SQLite will say so
            self._file_lock = None
        self._writer = _open_sqlite(self.path, readonly=False, synchronous=self.synchronous)
        mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise DatabaseUnavailable(f"SQLite refused WAL mode (got {mode})")
        self._reader = _open_sqlite(self.path, readonly=True, synchronous=self.synchronous)
        # Checkpoints copy the WAL back into the database file: tens of milliseconds now and then.
        # Done by SQLite inside a COMMIT they would stall the event loop; a thread with its own
        # connection does them instead (sqlite3 releases the GIL while it works).
        self._writer.execute("PRAGMA wal_autocheckpoint = 0")
        # A WAL reset (see ``_restart_wal``) cuts the file back to this size.
        self._writer.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self, interval: float = 0.25) -> None:
        conn = _open_sqlite(self.path, readonly=False, synchronous=self.synchronous)
        try:
            while not self._stop_checkpoints.wait(interval):
                with contextlib.suppress(sqlite3.Error):
                    _, wal_frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if wal_frames >= WAL_RESET_FRAMES:
                        self._restart_wanted = True
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()

    async def close(self) -> None:
        # Let a pending group commit finish before closing.
        if self._group is not None and not self._group.done():
            with contextlib.suppress(Exception):
                await self._group
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            await asyncio.to_thread(self._checkpointer.join, 10)
            self._checkpointer = None
        for conn in (self._reader, self._writer, self._rewinder):
            if conn is not None:
                conn.close()
        self._reader = self._writer = self._rewinder = None
        self._unlock_file()
        if self._file_lock is not None:
            os.close(self._file_lock)
            self._file_lock = None

    async def _lock_file(self) -> None:
        """The cross-process writer lock, held from BEGIN to the group's end."""
        fd = self._file_lock
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Another process writes to this file: from now on a unit commits as soon as no
                # other unit of ours waits to join its group, so the lock is held briefly. Wait (in
                # a thread) until the lock is free, without keeping it — it is taken only once this
                # task runs again.
                self._shared = True
                await loop.run_in_executor(None, _wait_until_free, fd)
        self._file_locked = True

    def _unlock_file(self) -> None:
        if self._file_locked and self._file_lock is not None:
            self._file_locked = False
            fcntl.flock(self._file_lock, fcntl.LOCK_UN)

    def in_transaction(self) -> bool:
        return self._current.get() is not None

    def _conn(self) -> sqlite3.Connection:
        conn = self._current.get()
        if conn is not None:
            return conn
        assert self._reader is not None, "database not started"
        return self._reader

    def _run(self, conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return conn.execute(_sqlite_sql(sql), args)
        except sqlite3.OperationalError as exc:
            if _is_unavailable(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self._run(self._conn(), sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Any | None:
        return self._run(self._conn(), sql, args).fetchone()

    async def execute(self, sql: str, *args: Any) -> None:
        if self._current.get() is None:
            async with self.transaction():
                self._run(self._conn(), sql, args)
        else:
            self._run(self._conn(), sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._current.get() is None:
            async with self.transaction():
                await self.executemany(sql, rows)
            return
        try:
            self._conn().executemany(_sqlite_sql(sql), rows)
        except sqlite3.OperationalError as exc:
            if _is_unavailable(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        current = self._current.get()
        if current is not None:  # nested unit: a savepoint inside the caller's
            current.execute("SAVEPOINT nested")
            try:
                yield
            except BaseException:
                if current.in_transaction:
                    current.execute("ROLLBACK TO nested")
                    current.execute("RELEASE nested")
                raise
            current.execute("RELEASE nested")
            return

        conn = self._writer
        assert conn is not None, "database not started"
        group: asyncio.Future[None] | None = None
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            try:
                if self._group is None:
                    if self._restart_wanted:
                        await self._restart_wal()
                    await self._lock_file()
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                    except sqlite3.OperationalError as exc:
                        self._unlock_file()
                        raise DatabaseUnavailable(str(exc)) from exc
                    self._group = asyncio.get_running_loop().create_future()
                    self._group_units = 0
                group = self._group
                self._group_units += 1
                if not self._commit_scheduled and not self._shared:
                    self._commit_scheduled = True
                    asyncio.get_running_loop().call_soon(self._commit_group)
                conn.execute("SAVEPOINT unit")
                token = self._current.set(conn)
                try:
                    yield
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK TO unit")
                        conn.execute("RELEASE unit")
                    else:
                        # SQLite rolled the whole transaction back itself (disk full, I/O error): every
                        # unit of this group is lost, so none of them may report success.
                        self._fail_group(group)
                    raise
                else:
                    conn.execute("RELEASE unit")
                finally:
                    self._current.reset(token)
            finally:
                self._lock.release()
        finally:
            if self._shared and group is not None and self._group is group and not self._commit_scheduled:
                self._commit_group()  # several processes: commit now unless ours queue to join (even after a failed unit)
        assert group is not None
        await asyncio.shield(group)

    async def _restart_wal(self) -> None:
        """Let the writer start the WAL over from its beginning, between two groups.

        The checkpoint thread copies the WAL into the database file without stopping the writer,
        but SQLite rewinds the WAL only when a write transaction begins with every frame copied —
        and under a steady stream of groups there are always new ones: the file grew by ≈ 50 MB/s
        under load, without end, and every write to it meant new file pages for the kernel to zero.
        Here, between two groups and with no unit allowed to start (``self._lock`` is held), a
        connection of its own copies what is left (little: the thread did the rest); the writer's
        next transaction then finds the WAL fully copied and rewinds it itself. Not ``RESTART`` on
        the writer's connection: that empties the writer's page cache, and re-reading it cost more
        than the growing file did. The event loop goes on parsing requests and serving reads.
        """
        self._restart_wanted = False
        if self._rewinder is None:
            self._rewinder = _open_sqlite(self.path, readonly=False, synchronous=self.synchronous)
        await self._lock_file()
        try:
            with contextlib.suppress(sqlite3.Error):  # busy: the thread is at it; next time
                await asyncio.get_running_loop().run_in_executor(None, _checkpoint, self._rewinder, "PASSIVE")
        finally:
            self._unlock_file()

    def _fail_group(self, group: asyncio.Future[None]) -> None:
        if self._group is group:
            self._group = None
            self._unlock_file()  # SQLite has ended the transaction already
        if not group.done():
            group.set_exception(DatabaseUnavailable("the transaction was rolled back by the database"))
            group.exception()  # retrieved by every waiter; silence "never retrieved"

    def _commit_group(self) -> None:
        """Runs once per event-loop turn with units done: one COMMIT for all of them.

        Not while a unit is mid-way (it awaited something), and not while units queue for the lock:
        ``asyncio.Lock`` wakes one waiter per loop turn, so committing between them would make every
        later unit a group of its own — a convoy that never ends under load (seen: 1.3 units per
        COMMIT after one long wait, half the throughput). The group takes the queue in instead, up
        to ``GROUP_MAX_UNITS`` so that its callers still get their answers."""
        if self._lock.locked() or (self._waiting and self._group_units < GROUP_MAX_UNITS):
            self._commit_scheduled = True  # one retry a turn, however many units asked for it
            asyncio.get_running_loop().call_soon(self._commit_group)
            return
        self._commit_scheduled = False
        group, self._group = self._group, None
        if group is None:
            return
        conn = self._writer
        assert conn is not None
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._unlock_file()
            if not group.done():
                group.set_exception(DatabaseUnavailable(str(exc)))
                group.exception()  # mark retrieved: every waiter re-raises it anyway
            return
        self._unlock_file()
        if not group.done():
            group.set_result(None)

    async def run_piccolo(self, sql: str, args: list[Any], query_type: str) -> list[dict[str, Any]]:
        if self._current.get() is None and query_type not in ("select", "count", "exists", "objects", "table_exists"):
            async with self.transaction():
                return self._piccolo_rows(self._conn().execute(sql, args))
        return self._piccolo_rows(self._conn().execute(sql, args))

    @staticmethod
    def _piccolo_rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
        if cursor.description is None:
            return []
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


# --------------------------------------------------------------------------- PostgreSQL


def _pg_down(exc: BaseException) -> bool:
    """The server is away (crashed, restarting, unreachable, out of resources), not our query."""
    import asyncpg
    from asyncpg.exceptions import _base

    return isinstance(exc, (
        OSError,  # refused, reset, timed out (ConnectionError and TimeoutError are OSErrors)
        asyncpg.PostgresConnectionError,  # 08xxx, and "connection was closed in the middle of operation"
        asyncpg.CannotConnectNowError,  # 57P03: starting up (crash recovery), shutting down
        asyncpg.AdminShutdownError,  # 57P01: terminated by a shutdown
        asyncpg.CrashShutdownError,  # 57P02: another backend crashed, everybody out
        asyncpg.InsufficientResourcesError,  # 53xxx: disk full, out of memory, too many connections
        asyncpg.ReadOnlySQLTransactionError,  # 25006: a standby, or a database set read-only
        _base.InternalClientError,  # a pooled connection left mid-protocol by a crash, before its close is seen
    )) or (isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc))  # "connection is closed"


async def _pg(awaitable: Any) -> Any:
    """Await a driver call; the server being away is ``DatabaseUnavailable`` (503), whatever the driver says."""
    try:
        return await awaitable
    except Exception as exc:
        if _pg_down(exc):
            raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc
        raise


class _PgTransaction:
    """An asyncpg transaction (or savepoint) whose BEGIN, COMMIT or ROLLBACK failing for want of a
    server is ``DatabaseUnavailable``; errors of the unit's own body pass through unchanged."""

    def __init__(self, transaction: Any) -> None:
        self.transaction = transaction

    async def __aenter__(self) -> None:
        await _pg(self.transaction.__aenter__())

    async def __aexit__(self, *exc_info: Any) -> bool:
        return bool(await _pg(self.transaction.__aexit__(*exc_info)))


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(self, dsn: str, min_size: int = 2, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.pool: Any = None
        self._current: ContextVar[Any] = ContextVar("pg_current", default=None)

    async def start(self) -> None:
        import asyncpg

        async def keep_session(_: Any) -> None:
            """Skip asyncpg's per-release reset query (a round trip each time): the app never changes
            session state — no SET, no LISTEN, only transaction-scoped advisory locks."""

        try:
            self.pool = await asyncpg.create_pool(
                self.dsn, min_size=self.min_size, max_size=self.max_size, reset=keep_session
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    def in_transaction(self) -> bool:
        return self._current.get() is not None

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return await _pg((self._current.get() or self.pool).fetch(sql, *args))

    async def fetch_planned(self, sql: str, *args: Any) -> list[Any]:
        # ``fetch`` keeps the statement prepared, and after five runs PostgreSQL may switch to a
        # generic plan: for a report page that plan looped over a whole year's rows (≈ 150 ms a page
        # instead of ≈ 15). A statement prepared afresh is planned with the actual arguments.
        async def run(conn: Any) -> list[Any]:
            statement = await conn.prepare(sql)
            return await statement.fetch(*args)

        current = self._current.get()
        if current is not None:
            return await _pg(run(current))

        async def pooled() -> list[Any]:
            async with self.pool.acquire() as conn:
                return await run(conn)

        return await _pg(pooled())

    async def fetchrow(self, sql: str, *args: Any) -> Any | None:
        return await _pg((self._current.get() or self.pool).fetchrow(sql, *args))

    async def execute(self, sql: str, *args: Any) -> None:
        await _pg((self._current.get() or self.pool).execute(sql, *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await _pg((self._current.get() or self.pool).executemany(sql, rows))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        current = self._current.get()
        if current is not None:
            async with _PgTransaction(current.transaction()):  # savepoint
                yield
            return
        acquired = self.pool.acquire()
        conn = await _pg(acquired.__aenter__())
        try:
            async with _PgTransaction(conn.transaction()):
                token = self._current.set(conn)
                try:
                    yield
                finally:
                    self._current.reset(token)
        finally:
            await _pg(acquired.__aexit__(None, None, None))

    async def lock_member(self, member_id: int) -> None:
        await self.execute("SELECT pg_advisory_xact_lock(1, $1)", member_id)

    async def lock_activity(self, activity_id: int) -> None:
        await self.execute("SELECT pg_advisory_xact_lock(2, $1)", activity_id)

    async def lock_closing(self, activity_id: int) -> None:
        await self.execute("SELECT pg_advisory_xact_lock(3, $1)", activity_id)

    async def lock_activity_edit(self, activity_id: int) -> None:
        await self.execute("SELECT pg_advisory_xact_lock(4, $1)", activity_id)

    async def hold_open(self, statuses: dict[int, str]) -> dict[int, str]:
        """A check-in reads its activity without a lock, so a close could commit after that read and
        count the member absent while the check-in goes on to be accepted. Holding the closing key
        shared makes a close wait for this transaction; the statuses are read again once it is held.
        Only tried, never waited for: a check-in already holds its member's lock, which a close needs
        for the absence entries (waiting would be a deadlock). A close under way counts as closed."""
        ids = list(statuses)
        held = await self.fetch(
            "SELECT t.id, pg_try_advisory_xact_lock_shared(3, t.id) FROM unnest($1::int[]) AS t(id)", ids
        )
        now = {r[0]: r[1] for r in await self.fetch("SELECT id, status FROM activities WHERE id = ANY($1::int[])", ids)}
        return {i: (now.get(i, statuses[i]) if ok else "closed") for i, ok in held}

    async def run_piccolo(self, sql: str, args: list[Any], query_type: str) -> list[Any]:
        return await _pg((self._current.get() or self.pool).fetch(sql, *args))


def create_database(settings: Any) -> Database:
    if settings.dialect == "postgres":
        return PostgresDatabase(settings.database_url, max_size=settings.pg_pool_size)
    return SQLiteDatabase(settings.sqlite_path, settings.sqlite_synchronous)
