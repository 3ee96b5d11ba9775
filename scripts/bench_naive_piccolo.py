#!/usr/bin/env python3
"""Check-ins/s of the naive per-request Piccolo path on PostgreSQL: the baseline of the real server.

``scripts/_naive_piccolo_app.py`` (one Litestar route doing a check-in with one Piccolo query per
step through Piccolo's own PostgresEngine pool) is loaded exactly like the real server in
``bench_checkin.py``: a fresh PostgreSQL database migrated with ``python -m server migrate``, the
same data (street → 3 communities × 4 branches, ``--members`` members with logins, one station,
``--activities`` open activities), the same distinct request bodies (member × activity pairs, fresh
``client_uuid``, the member's own bearer token), the same uvicorn settings and worker count, the
same load generator (wrk, or the asyncio client), warm-up, concurrency and duration. Afterwards the
same database checks: every body sent is replayed once, then each must have exactly one check-in,
one attempt and one ledger entry, and the root tally must equal the ledger sum.

``scripts/bench.py`` runs it next to ``bench_checkin.py --db postgres`` and reports
real check-ins/s ÷ naive check-ins/s (target ≥ 2).

    .venv/bin/python scripts/bench_naive_piccolo.py --seconds 10 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402
    ROOT,
    OtherLoad,
    Processes,
    SetupError,
    ensure_venv,
    free_port,
    install_sigterm_handler,
    print_table,
    temp_database,
    wait_http,
    write_json,
)

ensure_venv()

from bench_checkin import (  # noqa: E402
    CHECKIN_PATH,
    Driver,
    Load,
    Target,
    _counts,
    database_checks,
    prepare,
    run_python,
    settled_counts,
    target_json,
)


def start_naive(procs: Processes, env: dict[str, str], workers: int, log: Path) -> tuple[object, int]:
    """Same uvicorn settings as ``python -m server serve`` (see ``server/__main__.py``)."""
    port = free_port()
    proc = procs.start(
        [sys.executable, "-m", "uvicorn", "_naive_piccolo_app:app", "--app-dir", str(ROOT / "scripts"), "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
         "--log-level", "warning", "--no-access-log", "--no-proxy-headers", "--no-server-header"],
        env=env, log=log,
    )
    wait_http(port, "/api/v1/health", proc, log)
    return proc, port


def bench(args: argparse.Namespace, procs: Processes) -> Target:
    with temp_database("postgres", "naive") as db:
        print(f"[naive] building data: {args.members} members, {args.activities} open activities ...", flush=True)
        warmup_n = int(args.warmup * args.pool_rate) if args.warmup > 0 else 0
        run_n = int(args.seconds * args.pool_rate)
        bodies = asyncio.run(prepare(db, args.members, args.activities, warmup_n, run_n))
        driver = Driver(procs, db.tmpdir, force_python=args.python_client, threads=args.wrk_threads)
        log = db.tmpdir / "naive.log"
        proc, port = start_naive(procs, db.env, args.workers, log)
        target = Target(name="check-in, naive Piccolo", engine="postgres", workers=args.workers, run=Load(tool=driver.tool))
        try:
            if warmup_n:
                target.warmup = driver.load(port, CHECKIN_PATH, bodies.warmup, args.warmup, args.concurrency)
                time.sleep(0.5)
            print(f"[naive] loading {CHECKIN_PATH} for {args.seconds:g}s at concurrency {args.concurrency}"
                  f" ({driver.tool}, {args.workers} worker(s)) ...", flush=True)
            with OtherLoad(procs, db.pg_name) as other:
                target.run = driver.load(port, CHECKIN_PATH, bodies.run, args.seconds, args.concurrency)
            target.other = other.share
            loads = [x for x in (target.warmup, target.run) if x is not None]
            before = settled_counts(db, bodies.root_id)
            sent = (bodies.warmup[:target.warmup.used] if target.warmup else []) + bodies.run[:target.run.used]
            print(f"[naive] replaying {len(sent)} bodies (idempotency check) ...", flush=True)
            replay = run_python(port, CHECKIN_PATH, sent, 0, args.concurrency, once=True)
        finally:
            procs.stop(proc)
            if log.exists() and "Traceback" in (text := log.read_text(errors="replace")):
                print(f"[naive] server log:\n{text[-3000:]}", file=sys.stderr)
        after = asyncio.run(_counts(db, bodies.root_id))
        target.checks = database_checks(loads, before, replay, after)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (match bench_checkin's --workers)")
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--activities", type=int, default=200)
    parser.add_argument("--pool-rate", type=int, default=4000, help="distinct bodies built per second of load (default 4000)")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--python-client", action="store_true")
    parser.add_argument("--json-out", metavar="FILE")
    args = parser.parse_args()
    install_sigterm_handler()
    procs = Processes()
    try:
        target = bench(args, procs)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
    run = target.run
    print()
    print_table(
        ["target", "db", "workers", "req/s", "check-ins/s", "p50 ms", "p99 ms", "200", "422", "errors", "other load"],
        [[target.name, "postgres", target.workers, f"{run.rps:,.0f}", f"{run.ok_rps:,.0f}", f"{run.p50_ms:.1f}",
          f"{run.p99_ms:.1f}", run.c200, run.c422, run.errors, f"{target.other:.0%}" if target.other == target.other else "?"]],
    )
    failed = False
    print("\n[naive] database check (warm-up + run):")
    for text, ok in target.checks:
        print(f"  {'OK  ' if ok else 'FAIL'} {text}")
        failed |= not ok
    write_json(args.json_out, {
        "benchmark": "naive_piccolo", "seconds": args.seconds, "concurrency": args.concurrency,
        "members": args.members, "activities": args.activities, "cpus": os.cpu_count(), "targets": [target_json(target)],
    })
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
