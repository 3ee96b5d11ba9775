#!/usr/bin/env bash
# The whole test suite: every test on SQLite and on PostgreSQL (HONGYI_TEST_PG_URL, default
# postgresql://postgres@127.0.0.1:5432/test), including the PWA's browser tests in Debian's
# Chromium. With CI=true PostgreSQL and Redis must be there (started if installed but down), and a
# run without PostgreSQL results fails.
source "$(dirname "$0")/_env.sh"
ensure_venv "[dev]"
build_pwa
ensure_chromium

if [ "${CI:-}" = "true" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  if ! (redis-cli -h 127.0.0.1 ping >/dev/null 2>&1) && command -v redis-server >/dev/null; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
fi

mkdir -p test-artifacts
set +e
(cd pwa && npm test --silent)  # the outbox logic, without a browser (vitest)
pwa_status=$?
.venv/bin/python -m pytest -p no:cacheprovider --junitxml=test-artifacts/junit.xml "$@"
status=$?
[ "$pwa_status" -eq 0 ] || status=1
set -e
# In CI a green run must include both engines: count what each ran.
.venv/bin/python scripts/check_backends.py test-artifacts/junit.xml || status=1
exit $status
