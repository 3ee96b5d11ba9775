#!/usr/bin/env python3
"""Online backup of the SQLite database, safe while the server is running (see docs/operations.md).

Uses SQLite's backup API (``sqlite3.Connection.backup``) in one step: it reads one consistent
snapshot — everything committed when it starts, including what still sits in the ``-wal`` file,
nothing of a transaction still open — and, in WAL mode, never blocks the server's writer. Copying
``hongyi.db`` with ``cp`` while the server runs is NOT a backup: the WAL would be missing or torn.

The copy is written to ``<dest>.partial``, checked (``PRAGMA integrity_check``, the app's tables,
the last migration), made readable by its owner only (it holds names and phone numbers), synced to
disk and only then renamed to its final name, so a file with the final name is always complete.

    .venv/bin/python scripts/backup_sqlite.py /backups/               # → /backups/hongyi-20250301-0200.db
    .venv/bin/python scripts/backup_sqlite.py /backups/ --keep 14 --with-keys
    .venv/bin/python scripts/backup_sqlite.py --verify /backups/hongyi-20250301-0200.db

The source is ``DATABASE_URL`` (as the server reads it; ``--db PATH`` overrides). ``--with-keys``
also copies ``HONGYI_KEY_FILE`` next to the backup (mode 600) — the signing keys are not in the
database, and without them printed posters and member cards cannot be verified. ``--keep N`` then
deletes all but the newest N ``hongyi-*.db`` backups in that directory. Exit code 0 when the backup
(or ``--verify``) is good, 2 with one line on stderr otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUIRED_TABLES = ("orgs", "members", "users", "activities", "checkins", "checkin_attempts", "points_ledger",
                   "points_tally")


class BackupError(Exception):
    pass


def verify(path: Path) -> dict[str, object]:
    """Integrity, the app's tables and a few counts of a backup file; BackupError if it is not usable."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened: {exc}") from None
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise BackupError(f"{path} failed the integrity check: {'; '.join(map(str, result[:5]))}")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise BackupError(f"{path} is not a Hongyi database (missing tables: {', '.join(missing)})")
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("members", "checkins", "points_ledger")}
        migration = None
        if "migration" in tables:
            row = conn.execute("SELECT name FROM migration ORDER BY id DESC LIMIT 1").fetchone()
            migration = row[0] if row else None
        return {"counts": counts, "migration": migration, "bytes": path.stat().st_size}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a usable SQLite database: {exc}") from None
    finally:
        conn.close()


def backup(source: Path, dest: Path) -> dict[str, object]:
    """Snapshot ``source`` into ``dest`` (a file path, or a directory for a timestamped name)."""
    if not source.is_file():
        raise BackupError(f"database file {source} does not exist")
    if dest.is_dir():
        dest = dest / f"hongyi-{datetime.now().strftime('%Y%m%d-%H%M%S')}.db"
    if dest.exists():
        raise BackupError(f"{dest} already exists: not overwriting a backup")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    src = sqlite3.connect(source, timeout=30)
    try:
        src.execute("PRAGMA query_only = ON")
        out = sqlite3.connect(partial)
        try:
            src.backup(out)  # one step: one consistent read snapshot; WAL readers never block the writer
            out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file; the server turns WAL on again
        finally:
            out.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {exc}") from None
    finally:
        src.close()
    os.chmod(partial, 0o600)
    try:
        info = verify(partial)
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, dest)
    info.update(path=str(dest), seconds=time.monotonic() - started)
    return info


def copy_keys(key_file: Path, backup_path: Path) -> Path:
    if not key_file.is_file():
        raise BackupError(f"key file {key_file} does not exist")
    target = backup_path.with_name(backup_path.stem + ".keys.json")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(key_file, "rb") as src:
        shutil.copyfileobj(src, out)
        out.flush()
        os.fsync(out.fileno())
    return target


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` ``hongyi-*.db`` backups (and their key copies) in ``directory``."""
    backups = sorted(directory.glob("hongyi-*.db"))  # names sort by time
    removed = backups[:-keep] if keep > 0 else []
    for old in removed:
        old.unlink()
        old.with_name(old.stem + ".keys.json").unlink(missing_ok=True)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", nargs="?", type=Path, help="backup file, or a directory for hongyi-YYYYmmdd-HHMMSS.db")
    parser.add_argument("--db", type=Path, help="SQLite file to back up (default: from DATABASE_URL)")
    parser.add_argument("--verify", type=Path, metavar="FILE", help="only check an existing backup")
    parser.add_argument("--with-keys", action="store_true", help="also copy HONGYI_KEY_FILE next to the backup")
    parser.add_argument("--keep", type=int, default=0, metavar="N", help="then keep only the newest N backups there")
    args = parser.parse_args(argv)
    try:
        if args.verify is not None:
            info = verify(args.verify)
            print(f"{args.verify}: ok — {_summary(info)}")
            return 0
        if args.dest is None:
            parser.error("give a backup file or directory (or --verify FILE)")
        from server.settings import Settings, SettingsError

        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            raise BackupError(f"configuration error: {exc}") from None
        if args.db is None and settings.dialect != "sqlite":
            raise BackupError("DATABASE_URL is PostgreSQL: back it up with pg_dump (docs/operations.md)")
        info = backup(args.db or settings.sqlite_path, args.dest)
        print(f"backup written: {info['path']} ({info['seconds']:.1f} s) — {_summary(info)}")
        if args.with_keys:
            print(f"signing keys copied: {copy_keys(settings.key_file, Path(str(info['path'])))} (keep it secret)")
        else:
            print(f"note: the signing keys ({settings.key_file}) are not in the database; back them up too (--with-keys)")
        if args.keep:
            for old in prune(Path(str(info["path"])).parent, args.keep):
                print(f"removed old backup {old}")
        return 0
    except BackupError as exc:
        print(f"备份失败 / backup failed: {exc}", file=sys.stderr)
        return 2


def _summary(info: dict[str, object]) -> str:
    counts = info["counts"]
    assert isinstance(counts, dict)
    return (f"{int(info['bytes']) / 2**20:,.1f} MiB, integrity ok, {counts['members']:,} members, "  # type: ignore[call-overload]
            f"{counts['checkins']:,} check-ins, {counts['points_ledger']:,} ledger entries, "
            f"last migration id {info['migration'] or '?'}")


if __name__ == "__main__":
    sys.exit(main())
