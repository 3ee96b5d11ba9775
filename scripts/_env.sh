# Shared by run.sh and test.sh: a virtualenv in .venv with the locked dependencies.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "红驿 needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi

ensure_venv() {  # $1: extras, e.g. "" or "[dev]"
  local extras="${1:-}"
  local stamp=".venv/.installed${extras}"
  local want
  want="$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)"
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing Python dependencies${extras}"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c requirements.lock -e ".${extras}"
    echo "$want" > "$stamp"
  fi
}

build_pwa() {
  if [ -f pwa/package.json ]; then
    echo "==> building the PWA"
    (cd pwa && npm install --no-audit --no-fund --loglevel=error && npm run build)
  fi
}

ensure_chromium() {  # browser tests: Debian's Chromium and a CJK font (never a downloaded browser)
  if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    return
  fi
  echo "==> installing Chromium and CJK fonts from Debian"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  fi
}
