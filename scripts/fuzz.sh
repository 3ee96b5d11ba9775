#!/usr/bin/env bash
# The long schemathesis run (issue 6): 10 000 cases per engine against /schema/openapi.json, as
# anonymous, member, staff and admin, on a throw-away SQLite file and PostgreSQL database
# (HONGYI_BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test), the app in-process.
# Prints cases, duration, responses by class, 5xx count and failures per check; exit 1 on any.
#   bash scripts/fuzz.sh                        # 10 000 per engine, both engines
#   bash scripts/fuzz.sh --cases 50000 --db postgres --seed 7
source "$(dirname "$0")/_env.sh"
ensure_venv "[dev]"
exec .venv/bin/python scripts/fuzz.py "$@"
