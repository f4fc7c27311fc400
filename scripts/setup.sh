#!/usr/bin/env bash
# Install everything AeroFS needs on a fresh Debian machine, from the project's own files:
# system packages, the Python venv (locked), the labextension's Node packages (locked), and a dev
# build of the engine and the labextension into the venv. Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- system packages: databases and queue for the tests, peers for the benchmarks, a browser ------
APT_PACKAGES=(postgresql redis-server chromium goaccess libimage-exiftool-perl exiv2 bible-kjv)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Python: one venv, dependencies from the lock file ----------------------------------------
if [ ! -x .venv/bin/python ]; then
  log "python venv"
  python3 -m venv .venv
fi
[ -x .venv/bin/uv ] || .venv/bin/pip install -q uv
stamp=.venv/.lock-$(sha256sum requirements/dev.lock | cut -c1-16)
if [ ! -f "$stamp" ]; then
  log "python packages (requirements/dev.lock)"
  .venv/bin/uv pip install --python .venv/bin/python -q -r requirements/dev.lock
  rm -f .venv/.lock-*; touch "$stamp"
fi

# --- Node: the labextension's packages ----------------------------------------------------------
if [ -f labextension/package.json ]; then
  nstamp=labextension/node_modules/.lock-$(sha256sum labextension/package-lock.json | cut -c1-16)
  if [ ! -f "$nstamp" ]; then
    log "npm ci (labextension)"
    (cd labextension && npm ci --no-audit --no-fund --loglevel=error)
    touch "$nstamp"
  fi
fi

# --- the project itself, built into the venv -----------------------------------------------------
scripts/build.sh develop
