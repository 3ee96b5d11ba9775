#!/usr/bin/env python3
"""The long schemathesis run (issue 6): the CI test's fuzzing (tests/fuzzing.py) with many more cases.

Each engine gets a freshly migrated throw-away database (a temp SQLite file / a new PostgreSQL
database, dropped at the end) with the demo street seeded; the app runs in-process (ASGI, no port)
with its real lifespan. Cases are spread evenly over the operations of /schema/openapi.json, each
positive or negative, sent as anonymous / member / staff / admin.

Prints per engine: cases, duration, responses by class, the 5xx count and failures per check (with
one example request for each distinct failure). Exit status 1 if anything failed.

    .venv/bin/python scripts/fuzz.py                       # 10 000 cases per engine, SQLite and PostgreSQL
    .venv/bin/python scripts/fuzz.py --cases 2000 --db sqlite --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import ROOT, SetupError, ensure_venv, install_sigterm_handler, temp_database  # noqa: E402

ensure_venv()
sys.path.insert(0, str(ROOT))


def fuzz_engine(engine: str, cases: int, seed: int, only: list[str]) -> bool:
    with temp_database(engine, "fuzz") as db:  # migrated; dropped / removed afterwards
        return asyncio.run(fuzz_database(db.settings(), engine, cases, seed, only))


async def fuzz_database(settings: object, engine: str, cases: int, seed: int, only: list[str]) -> bool:
    import httpx
    from asgi_lifespan import LifespanManager

    from server.app import create_app
    from server.seed import _seed
    from tests.fuzzing import load_schema, prepare_identities, run_fuzz

    app = create_app(settings)
    async with LifespanManager(app):
        await _seed(app.state.ctx)
        identities = await prepare_identities(app.state.ctx, minutes=24 * 60)
        operations = sum(1 for _ in load_schema(app).get_all_operations())
        report = None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            # Hypothesis stops early on operations with few distinct inputs: further passes (next
            # seed) top the run up until it has the cases asked for.
            for extra in range(5):
                missing = cases - (report.cases if report else 0)
                if missing <= 0:
                    break
                per_operation = max(1, math.ceil(missing * 1.1 / operations))
                print(f"== {engine}: pass {extra + 1}, {operations} operations × up to {per_operation} cases "
                      f"(seed {seed + extra})", flush=True)
                report = await asyncio.to_thread(
                    run_fuzz, app, asyncio.get_running_loop(), client, identities,
                    examples_per_operation=per_operation, seed=seed + extra, only=only, report=report,
                )
    assert report is not None
    print(report.summary(), flush=True)
    return not report.findings and report.server_errors == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_000, help="cases per engine (spread over the operations)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--only", action="append", default=[], help="fuzz only paths containing this text")
    args = parser.parse_args()
    install_sigterm_handler()
    # The app logs every handled error; a fuzz run makes thousands on purpose.
    logging.basicConfig(level=logging.CRITICAL)
    logging.disable(logging.WARNING)
    engines = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    started = time.perf_counter()
    ok = True
    for engine in engines:
        try:
            ok = fuzz_engine(engine, args.cases, args.seed, args.only) and ok
        except SetupError as exc:
            print(f"== {engine}: not run: {exc}", file=sys.stderr)
            ok = False
    print(f"fuzz: {'no failures' if ok else 'FAILURES (see above)'} — {time.perf_counter() - started:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
