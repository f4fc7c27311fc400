#!/usr/bin/env bash
# The whole test suite, stopping at the first failure:
#   lint (cargo fmt/clippy, ruff, mypy, eslint/prettier) → cargo test → jest → fuzz smoke runs →
#   wheel check (fresh venv: import, server + lab extension enabled) → UI end-to-end (JupyterLab and
#   Notebook 7 and a plain widget host, in headless Chromium) → pytest (unit, integration against real PostgreSQL/Redis/S3, nbval notebooks).
# pytest runs last so the final lines are its summary. `scripts/test.sh lint` runs the lint stage only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
: "${CARGO_TARGET_DIR:=$HOME/.cache/aerofs/target}"
export CARGO_TARGET_DIR
stage() { printf '\n\033[1;34m=== %s ===\033[0m\n' "$*"; }

lint() {
  stage "cargo fmt --check"
  cargo fmt --all -- --check
  stage "cargo clippy -D warnings"
  cargo clippy --workspace --all-targets --features python -q -- -D warnings
  stage "bench/loadgen: cargo fmt --check, clippy -D warnings"
  # Its own workspace (the server bench's clients, not part of engine/'s) and the target dir the bench builds it in.
  cargo fmt --manifest-path bench/loadgen/Cargo.toml -- --check
  CARGO_TARGET_DIR=bench/.cache/loadgen cargo clippy --manifest-path bench/loadgen/Cargo.toml --release --all-targets -q -- -D warnings
  stage "ruff"
  ruff check aerofs_kernel jobserver tests bench scripts
  ruff format --check aerofs_kernel jobserver tests bench scripts
  stage "mypy"
  mypy
  if [ -f labextension/package.json ]; then
    stage "eslint + prettier (labextension)"
    (cd labextension && npm run --silent lint:check)
  fi
}

if [ "${1:-all}" = lint ]; then lint; exit 0; fi

lint

stage "cargo test"
# Quiet, with the empty doc-test/binary sections dropped so the real counts stand out.
cargo test --workspace -q 2>&1 | grep -v -e "^running 0 tests" -e "0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out" -e "^$"

if [ -f labextension/package.json ]; then
  stage "jest (labextension)"
  (cd labextension && npm test --silent)
fi

if [ -x scripts/fuzz.sh ]; then
  stage "fuzz smoke runs"
  scripts/fuzz.sh smoke
fi

stage "wheel: fresh venv, import, extensions enabled"
scripts/check-wheel.sh

stage "services: PostgreSQL, Redis, S3 (loopback)"
trap 'scripts/services.sh stop' EXIT # set first: a start that fails half way stops what it started
scripts/services.sh start
eval "$(scripts/services.sh env)"

if [ -f labextension/ui-tests/package.json ]; then
  stage "UI end-to-end in headless Chromium (JupyterLab: Galata + browser_check; Notebook 7; the widget host standing in for VS Code)"
  scripts/ui-test.sh all
fi

stage "pytest"
# Notebooks (notebooks/ and tests/kernel/notebooks/) run under nbval with their stored outputs compared,
# sanitized of timings, paths and ids by notebooks/nbval-sanitize.cfg.
pytest -p no:cacheprovider tests notebooks --nbval --nbval-sanitize-with notebooks/nbval-sanitize.cfg
