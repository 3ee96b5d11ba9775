"""scripts/bench.py's write-up: targets judged from the figures, ratios to the same run's ceilings,
a crashed benchmark shown as such (and failing the run) rather than silently missing."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("hongyi_bench", ROOT / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hongyi_bench"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def _target(name: str, engine: str, ok_rps: float, p99: float, workers: int = 1, checks_ok: bool = True) -> dict:
    return {"name": name, "engine": engine, "workers": workers, "tool": "python", "rps": ok_rps, "ok_rps": ok_rps,
            "p50_ms": p99 / 3, "p99_ms": p99, "c200": 1, "c422": 0, "errors": 0, "wrapped": 0, "duration_s": 10,
            "other_load": 0.01, "checks": [{"text": "ledger rows == accepted rows", "ok": checks_ok}]}


META = {"cpus": 2, "cpu_model": "test cpu", "memory": "24 GiB", "load_before": (0.1, 0.2, 0.3),
        "load_after": (1.0, 0.5, 0.4), "python": "3.11", "sqlite": "3.40", "postgres": "15", "commit": "abc123",
        "commit_subject": "subject", "dirty": [], "wrk": False}


def test_targets_judged_against_same_run_ceilings_and_a_crash_is_reported() -> None:
    bench = _bench()
    checkin = bench.Suite("check-in", "bench_checkin.py", [], 1, rc=0, data={
        "seconds": 10, "concurrency": 64, "members": 5000, "activities": 200, "targets": [
            _target("check-in", "sqlite", 5200, 45), _target("check-in", "postgres", 900, 120),
            _target("echo (bare Litestar)", "-", 12000, 10),
        ]})
    naive = bench.Suite("naive", "bench_naive_piccolo.py", [], 1, rc=0, data={
        "targets": [_target("check-in, naive Piccolo", "postgres", 500, 300)]})
    reports = bench.Suite("reports", "bench_reports.py", [], 1, rc=2, tail=["setup failed: PostgreSQL not usable"])
    now = datetime.now(UTC)
    text = bench.render([checkin, naive, reports], META, False, now, now)

    assert "| check-in SQLite ≥ 5,000/s | **met** | 5,200/s |" in text
    assert "| check-in SQLite p99 ≤ 50 ms | **met** | 45.0 ms |" in text
    # 5,200 / 12,000 = 0.43: under half the echo ceiling of the same run.
    assert "| check-in SQLite ≥ 0.5× echo | **not met** | 0.43× |" in text
    # 900 / 500 = 1.8: the real PostgreSQL path is not yet twice the naive one.
    assert "| check-in PostgreSQL ≥ 2× naive Piccolo | **not met** | 1.80× |" in text
    assert "| reports benchmark | crashed (exit 2) |" in text
    assert "setup failed: PostgreSQL not usable" in text
    assert not all(s.ok for s in (checkin, naive, reports))


def test_the_server_processes_cpu_is_reported_per_process() -> None:
    bench = _bench()
    sqlite = _target("check-in", "sqlite", 2700, 40)
    sqlite["server_cpu"] = [
        {"process": "check-in writer", "running": 0.92, "waiting": 0.03},
        {"process": "serve", "running": 0.37, "waiting": 0.13},
        {"process": "python", "running": 0.001, "waiting": 0.0},  # idle helpers are left out
    ]
    checkin = bench.Suite("check-in", "bench_checkin.py", [], 1, rc=0, data={
        "seconds": 10, "concurrency": 64, "members": 5000, "activities": 200, "targets": [
            sqlite, _target("echo (bare Litestar)", "-", 5000, 10)]})
    now = datetime.now(UTC)
    text = bench.render([checkin], META, False, now, now)

    assert "running sets the rate): check-in writer 92% / 3%, serve 37% / 13%." in text
    assert "python 0%" not in text


def test_a_failed_database_check_is_spelled_out() -> None:
    bench = _bench()
    checkin = bench.Suite("check-in", "bench_checkin.py", [], 1, rc=1, data={
        "seconds": 10, "concurrency": 64, "members": 5000, "activities": 200, "targets": [
            _target("check-in", "sqlite", 6000, 20, checks_ok=False), _target("echo (bare Litestar)", "-", 9000, 5)]})
    now = datetime.now(UTC)
    text = bench.render([checkin], META, True, now, now)
    assert "**FAILED**: check-in (sqlite): ledger rows == accepted rows" in text
    assert "| check-in benchmark | failed its own checks (exit 1) |" in text
    assert "Quick run" in text
