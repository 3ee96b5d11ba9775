#!/usr/bin/env bash
# Lighthouse 12 mobile scores (performance, accessibility, best practices) of the built PWA, served
# by the real server on a throw-away SQLite database at 127.0.0.1, plus the initial JS size.
# Reports go to test-artifacts/lighthouse/. Not part of the test suite (it takes a minute or two).
source "$(dirname "$0")/_env.sh"
ensure_venv ""
build_pwa
ensure_chromium
(cd scripts/lighthouse && npm install --no-audit --no-fund --loglevel=error)

.venv/bin/python scripts/pwa_size.py || echo "initial JS is over the 120 KiB target"

work="$(mktemp -d)"
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export DATABASE_URL="sqlite:///$work/hongyi.db" HONGYI_DATA_DIR="$work" HONGYI_KEY_FILE="$work/keys.json"
export PUBLIC_BASE_URL="http://127.0.0.1:$port"
.venv/bin/python -m server migrate >/dev/null
.venv/bin/python -m server seed-demo >/dev/null
.venv/bin/python -m server serve --host 127.0.0.1 --port "$port" >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null && break
  sleep 0.2
done

out="test-artifacts/lighthouse"
mkdir -p "$out"
export CHROME_PATH=/usr/bin/chromium
for page in "/" "/activate?code=demo"; do
  name="$(echo "$page" | tr -c 'a-z0-9\n' '_' | sed 's/^_*$/home/')"
  scripts/lighthouse/node_modules/.bin/lighthouse "http://127.0.0.1:$port$page" \
    --quiet --output=json --output-path="$out/$name.json" \
    --only-categories=performance,accessibility,best-practices \
    --chrome-flags="--headless --no-sandbox" --locale=zh-CN
  .venv/bin/python - "$out/$name.json" "$page" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
scores = {k: round(v["score"] * 100) for k, v in report["categories"].items()}
audits = report["audits"]
print(f"{sys.argv[2]}: " + ", ".join(f"{k} {v}" for k, v in scores.items())
      + f" | FCP {audits['first-contentful-paint']['displayValue']}, LCP {audits['largest-contentful-paint']['displayValue']},"
      f" TBT {audits['total-blocking-time']['displayValue']}, CLS {audits['cumulative-layout-shift']['displayValue']}")
for key in ("performance", "accessibility", "best-practices"):
    if scores[key] < 95:
        failing = [a["title"] for a in (audits[r["id"]] for r in report["categories"][key]["auditRefs"])
                   if a.get("score") is not None and a["score"] < 0.9]
        print(f"  {key} below 95: {failing[:8]}")
PY
done
