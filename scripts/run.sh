#!/usr/bin/env bash
# Start 红驿 on SQLite: install, build the PWA, migrate, seed a demo street, serve on 127.0.0.1:8000.
source "$(dirname "$0")/_env.sh"
ensure_venv ""
build_pwa
export DATABASE_URL="${DATABASE_URL:-sqlite:///$ROOT/data/hongyi.db}"
# QR codes carry this origin; phones must reach it (set it to the station's LAN address or domain).
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://${HOST:-127.0.0.1}:${PORT:-8000}}"
.venv/bin/python -m server migrate
.venv/bin/python -m server seed-demo
exec .venv/bin/python -m server serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
