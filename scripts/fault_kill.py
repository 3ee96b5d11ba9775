#!/usr/bin/env python3
"""kill -9 of the server in the middle of 500-item syncs, many times over: every item exactly once.

The long form of ``tests/test_faults.py::test_kill_9_…``. Each round starts ``python -m server
serve`` (its own process group), and ``--clients`` phones sync the round's ``--per-round`` new
members' 500-item offline batches (every item a new, accepted check-in) one after another, mixed
with replays of every batch of earlier rounds. Then SIGKILL goes to the server's whole process
group (workers included) at a moment chosen per round, alternating:

* ``commits`` — as soon as a random 1–3 of the round's new batches are committed (+ 0–20 ms):
  some batches are stored, others are in flight or not sent yet;
* ``delay`` — a random 0–0.5 s after the first request: sometimes before anything is committed,
  sometimes while the first ones commit.

After the last round the server is started once more and every batch is replayed; each replay
must be 200, every 200 a phone got before a kill must be what the replay answers, and every item
must be exactly once in check-ins, attempts and ledger with the tally equal to the ledger
(``_bench_common.exactly_once_problems``). Temp SQLite file / fresh PostgreSQL database on
127.0.0.1:5432, removed at the end; processes stopped by PID, also on Ctrl-C.

    .venv/bin/python scripts/fault_kill.py --db both --rounds 10
    .venv/bin/python scripts/fault_kill.py --db postgres --workers 2 --rounds 20
    .venv/bin/python scripts/fault_kill.py --db sqlite --sqlite-workers 2   # the cross-process writer lock
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (  # noqa: E402
    BenchDB,
    Processes,
    SetupError,
    build_sync_street,
    ensure_venv,
    exactly_once_problems,
    install_sigterm_handler,
    print_table,
    temp_database,
)
from _faults import KillRound, Peek, ServerProcess, kill_round, post_batch, results_by_uuid  # noqa: E402

ensure_venv()


async def run_engine(db: BenchDB, args: argparse.Namespace, procs: Processes) -> tuple[list[KillRound], list[str]]:
    import httpx

    from server.core.db import create_database
    from server.core.context import open_context

    async with open_context(db.settings()) as ctx:
        street = await build_sync_street(ctx, args.rounds * args.per_round)
    workers = args.workers if db.engine == "postgres" else args.sqlite_workers
    server = ServerProcess(db.env, db.tmpdir / "server.log", workers=workers, procs=procs)
    rng = random.Random(args.seed)
    answers: dict[str, dict[str, Any]] = {}
    rounds: list[KillRound] = []
    async with Peek(db.url) as peek:
        for n in range(args.rounds):
            new = street.members[n * args.per_round:(n + 1) * args.per_round]
            trigger = "commits" if n % 2 == 0 else "delay"
            result = await kill_round(server, street, peek, new, args.clients, rng, trigger, answers)
            rounds.append(result)
            print(f"  round {n + 1:2}: kill on {trigger:7} — {result.committed}/{result.new} new batches committed,"
                  f" {result.cut} requests cut, {result.answered} answered", flush=True)

    problems: list[str] = [e for r in rounds for e in r.errors]
    server.start()
    final: dict[str, dict[str, Any]] = {}
    keys = list(street.batches)
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        async def replay() -> None:
            while keys:
                key = keys.pop()
                reply = await post_batch(client, street, key)
                if reply.status_code != 200:
                    problems.append(f"replay {key}: {reply.status_code} {reply.text[:300]}")
                else:
                    final.update(results_by_uuid(reply))

        await asyncio.gather(*(replay() for _ in range(args.clients)))
    server.stop()
    changed = [u for u, r in answers.items() if final.get(u) != r]
    if changed:
        problems.append(f"{len(changed)} results answered before a kill differ on replay")
    database = create_database(db.settings())
    await database.start()
    try:
        problems += await exactly_once_problems(database, street, final)
    finally:
        await database.close()
    return rounds, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=8, help="new members (500-item batches) per round (default 8)")
    parser.add_argument("--clients", type=int, default=3, help="phones syncing at once (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="server workers on PostgreSQL (default 2)")
    parser.add_argument("--sqlite-workers", type=int, default=1, help="server workers on SQLite (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (kill moments, order)")
    args = parser.parse_args()
    if args.rounds < 1 or args.per_round < 2:
        parser.error("need --rounds >= 1 and --per-round >= 2")
    install_sigterm_handler()
    procs = Processes()
    failed = False
    summary = []
    try:
        for engine in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
            print(f"[{engine}] {args.rounds} rounds of {args.per_round} new 500-item batches ...", flush=True)
            t0 = time.monotonic()
            with temp_database(engine, "kill") as db:
                rounds, problems = asyncio.run(run_engine(db, args, procs))
            items = sum(r.new for r in rounds) * 500
            mid = sum(r.mid_way for r in rounds)
            summary.append([engine, len(rounds), mid, sum(r.cut for r in rounds), items,
                            "OK" if not problems else "FAIL", f"{time.monotonic() - t0:.0f}"])
            for line in problems[:10]:
                print(f"    {line}")
            failed |= bool(problems)
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
    print()
    print_table(["db", "rounds", "killed mid-way*", "requests cut", "items", "exactly once", "seconds"], summary)
    print("* some of the round's new batches committed, others not, and requests in flight")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
