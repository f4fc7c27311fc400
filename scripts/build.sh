#!/usr/bin/env bash
# Build AeroFS.
#   build.sh develop   engine into the venv (maturin develop --release), labextension linked into
#                      the venv, server extension enabled: what the tests and `just lab` use.
#   build.sh wheel     the distributable wheel into dist/: labextension built with npm first, copied
#                      into maturin's data folder with the server-extension config, then maturin build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
: "${CARGO_TARGET_DIR:=$HOME/.cache/aerofs/target}"
export CARGO_TARGET_DIR
log() { printf '\033[1m[build]\033[0m %s\n' "$*"; }
LABEXT_NAME=aerofs-labextension
# maturin's data folder: its data/ subfolder is installed under sys.prefix (share/, etc/).
DATA=build/wheel-data/data

build_labextension() {
  [ -f labextension/package.json ] || return 0
  log "labextension (npm run build:prod)"
  (cd labextension && npm run --silent build:prod)
}

server_config() {
  # Enables the server extension on install, with no `jupyter server extension enable` step.
  mkdir -p "$1"
  cat >"$1/jobserver.json" <<'JSON'
{
  "ServerApp": {
    "jpserver_extensions": {
      "jobserver": true
    }
  }
}
JSON
}

# The server-extension config goes into every build (develop included), the labextension into wheels.
server_config "$DATA/etc/jupyter/jupyter_server_config.d"

case "${1:-develop}" in
  develop)
    log "engine (maturin develop --release)"
    maturin develop --release --uv -q 2>&1 | grep -v "^📦\|^🔗\|^🐍\|^💻\|^🍹" || true
    test -n "$(ls aerofs_kernel/_engine*.so 2>/dev/null)" || { echo "engine build failed" >&2; exit 1; }
    if [ -f labextension/package.json ]; then
      if [ ! -f labextension/aerofs_labextension_build/package.json ] || [ -n "$(find labextension/src labextension/style labextension/package.json -newer labextension/aerofs_labextension_build/package.json 2>/dev/null | head -n1)" ]; then
        build_labextension
      fi
      dest=.venv/share/jupyter/labextensions/$LABEXT_NAME
      mkdir -p "$(dirname "$dest")"
      [ -L "$dest" ] || { rm -rf "$dest"; ln -s "$ROOT/labextension/aerofs_labextension_build" "$dest"; }
    fi
    ;;
  wheel)
    build_labextension
    rm -rf "$DATA/share"
    if [ -d labextension/aerofs_labextension_build ]; then
      mkdir -p "$DATA/share/jupyter/labextensions"
      cp -r labextension/aerofs_labextension_build "$DATA/share/jupyter/labextensions/$LABEXT_NAME"
    fi
    log "wheel (maturin build --release)"
    maturin build --release --out dist -q
    ls -1 dist/aerofs-*.whl
    ;;
  *) echo "usage: $0 develop|wheel" >&2; exit 2 ;;
esac
