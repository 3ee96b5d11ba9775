"""scripts/backup_sqlite.py: an online backup taken while a writer is busy holds every committed
row (also those only in the WAL) and nothing uncommitted, verifies, and restores into a working
server; a damaged file is refused. SQLite only: PostgreSQL is backed up with pg_dump."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from server.app import create_app
from tests.conftest import ROOT, _settings, run_cli

SCRIPT = ROOT / "scripts" / "backup_sqlite.py"


def _backup(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


async def test_online_backup_while_writing_then_restore(tmp_path: Path) -> None:
    db = tmp_path / "live" / "hongyi.db"
    env = {"DATABASE_URL": f"sqlite:///{db}", "HONGYI_KEY_FILE": str(tmp_path / "live" / "keys.json")}
    for command in ("migrate", "seed-demo"):
        done = run_cli(command, env=env)
        assert done.returncode == 0, done.stderr + done.stdout

    # A writer like the server's: WAL, no automatic checkpoint; one change committed (it lives only in
    # the -wal file), then a second one left open while the backup runs.
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    member_id = writer.execute("SELECT MIN(id) FROM members").fetchone()[0]
    writer.execute("UPDATE members SET name = '已提交' WHERE id = ?", (member_id,))
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE members SET name = '未提交' WHERE id = ?", (member_id,))
    assert (db.parent / "hongyi.db-wal").stat().st_size > 0
    members = writer.execute("SELECT COUNT(*) FROM members").fetchone()[0]

    backups = tmp_path / "backups"
    backups.mkdir()
    done = _backup(str(backups), "--with-keys", env=env)
    writer.execute("ROLLBACK")
    writer.close()
    assert done.returncode == 0, done.stderr
    [copy] = backups.glob("hongyi-*.db")
    assert oct(copy.stat().st_mode & 0o777) == "0o600"
    assert (backups / f"{copy.stem}.keys.json").read_bytes() == (tmp_path / "live" / "keys.json").read_bytes()
    assert sorted(f.name for f in backups.iterdir()) == [copy.name, f"{copy.stem}.keys.json"]  # nothing half-written
    check = sqlite3.connect(copy)
    assert check.execute("SELECT name FROM members WHERE id = ?", (member_id,)).fetchone()[0] == "已提交"
    assert check.execute("SELECT COUNT(*) FROM members").fetchone()[0] == members
    check.close()

    # Taking a second backup to the same file name is refused rather than overwriting the first.
    again = _backup(str(copy), env=env)
    assert again.returncode == 2 and "already exists" in again.stderr

    # Restore: the copy (and its keys) in place of the database; the server starts and logs in on it.
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "hongyi.db").write_bytes(copy.read_bytes())
    settings = _settings(f"sqlite:///{restored / 'hongyi.db'}", backups / f"{copy.stem}.keys.json")
    app = create_app(settings)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            health = await client.get("/api/v1/health")
            assert health.status_code == 200 and health.json()["database"] == "ok"
            login = await client.post("/api/v1/auth/login", json={"phone": "13900000001", "password": "hongyi-member"})
            assert login.status_code == 200, login.text


def test_verify_refuses_a_damaged_or_foreign_file(tmp_path: Path) -> None:
    db = tmp_path / "hongyi.db"
    done = run_cli("migrate", env={"DATABASE_URL": f"sqlite:///{db}", "HONGYI_KEY_FILE": str(tmp_path / "k.json")})
    assert done.returncode == 0, done.stderr
    good = _backup("--verify", str(db), env={})
    assert good.returncode == 0 and "integrity ok" in good.stdout

    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    bad = _backup("--verify", str(truncated), env={})
    assert bad.returncode == 2 and "backup failed" in bad.stderr and "Traceback" not in bad.stderr

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    foreign = _backup("--verify", str(other), env={})
    assert foreign.returncode == 2 and "not a Hongyi database" in foreign.stderr


def test_postgres_database_url_points_to_pg_dump(tmp_path: Path) -> None:
    done = _backup(str(tmp_path), env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/hongyi"})
    assert done.returncode == 2 and "pg_dump" in done.stderr
    assert not list(tmp_path.iterdir())
