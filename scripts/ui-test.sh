#!/usr/bin/env bash
# UI end-to-end tests of the labextension: Galata (Playwright) in Debian's headless Chromium against a
# real JupyterLab running the real AeroFS job server on its embedded default (SQLite + local worker
# pool), then `python -m jupyterlab.browser_check`. Starts and stops everything it needs.
#   scripts/ui-test.sh            both
#   scripts/ui-test.sh e2e        Galata only
#   scripts/ui-test.sh browser-check
# Artifacts: labextension/ui-tests/test-results/ (screenshots under screenshots/), playwright-report/.
# With UPDATE_SCREENSHOTS=1 the dashboard screenshot is also copied to docs/images/sidebar.png (the
# README's); a plain test run leaves the tracked tree untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
log() { printf '\033[1m[ui-test]\033[0m %s\n' "$*"; }
WHAT=${1:-all}
CHROMIUM=${AEROFS_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "ui-test: $CHROMIUM not found (apt-get install chromium)" >&2; exit 1; }
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# --- the labextension, built from this checkout ---------------------------------------------------
EXT=labextension/aerofs_labextension_build
if [ ! -f "$EXT/package.json" ] || [ -n "$(find labextension/src labextension/style labextension/package.json -newer "$EXT/package.json" 2>/dev/null | head -n1)" ]; then
  log "building the labextension"
  (cd labextension && npm run --silent build:prod >/dev/null)
fi
UI=labextension/ui-tests
stamp=$UI/node_modules/.lock-$(sha256sum $UI/package-lock.json | cut -c1-16)
if [ ! -f "$stamp" ]; then
  log "npm ci (ui-tests)"
  (cd $UI && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi

# --- a scratch world: Jupyter root with sample data, Jupyter dirs, labextensions path ---------------
TMP=$(mktemp -d /tmp/aerofs-ui.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
export AEROFS_UI_ROOT=$TMP/root AEROFS_UI_LABEXTENSIONS=$TMP/labextensions
export JUPYTER_DATA_DIR=$TMP/data JUPYTER_RUNTIME_DIR=$TMP/runtime
export AEROFS_UI_PORT=${AEROFS_UI_PORT:-8891}
export AEROFS_CHROMIUM=$CHROMIUM
# The embedded default: no database or Redis URL reaches the server.
unset AEROFS_DATABASE_URL AEROFS_REDIS_URL AEROFS_JOBSERVER_URL
mkdir -p "$AEROFS_UI_ROOT" "$AEROFS_UI_LABEXTENSIONS" "$JUPYTER_DATA_DIR" "$JUPYTER_RUNTIME_DIR"
ln -s "$ROOT/$EXT" "$AEROFS_UI_LABEXTENSIONS/aerofs-labextension"
python - "$AEROFS_UI_ROOT" <<'PY'
import gzip, os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
csv = os.path.join(root, "data", "csv")
os.makedirs(csv)
os.makedirs(os.path.join(root, "out"))
with open(os.path.join(csv, "sales.csv"), "w") as f:
    f.write("id,region,amount,day\n")
    for i in range(2000):
        f.write(f"{i},{rnd.choice(['north','south','east','west'])},{rnd.uniform(1, 999):.2f},2026-01-{i % 28 + 1:02d}\n")
with open(os.path.join(csv, "people.csv"), "w") as f:
    f.write("name,age,city\n")
    for i in range(500):
        f.write(f"person{i},{rnd.randint(18, 90)},{rnd.choice(['Oslo','Lyon','Kyoto'])}\n")
# A job long enough to cancel: many inputs, all links to one large gzipped CSV (little disk).
big = os.path.join(root, "data", "big")
os.makedirs(big)
src = os.path.join(root, "data", "big-source.csv.gz")
with gzip.open(src, "wt", compresslevel=1) as f:
    f.write("id,a,b,c,label\n")
    for i in range(600_000):
        f.write(f"{i},{i * 7 % 1000},{i * 0.5},{rnd.random():.6f},label{i % 97}\n")
for i in range(600):
    os.symlink(src, os.path.join(big, f"part-{i:04d}.csv.gz"))
PY

if python -c "import jobserver, sys; sys.exit(0 if hasattr(jobserver, '_jupyter_server_extension_points') else 1)" 2>/dev/null; then
  export AEROFS_UI_NO_JOBSERVER=0
else
  export AEROFS_UI_NO_JOBSERVER=1
  log "WARNING: the jobserver server extension is not importable: only the tests without it run"
fi

status=0
if [ "$WHAT" = all ] || [ "$WHAT" = e2e ]; then
  log "Galata end-to-end tests (Chromium at $CHROMIUM, JupyterLab on 127.0.0.1:$AEROFS_UI_PORT)"
  rm -rf $UI/test-results $UI/playwright-report
  (cd $UI && npx playwright test) || status=$?
  if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ] && [ -f $UI/test-results/screenshots/sidebar.png ]; then
    mkdir -p docs/images
    cp $UI/test-results/screenshots/sidebar.png docs/images/sidebar.png
    log "dashboard screenshot (real job server): docs/images/sidebar.png"
  fi
fi

if [ "$WHAT" = all ] || [ "$WHAT" = browser-check ]; then
  log "python -m jupyterlab.browser_check"
  # browser_check installs Playwright and a browser of its own in <app dir>/browser_test: give it a
  # scratch app dir (linking the real one's assets), the ui-tests' Playwright, and Debian's Chromium
  # where Playwright looks for its headless shell, so nothing is downloaded.
  APP=$TMP/lab-app
  mkdir -p "$APP/browser_test"
  real_app=$(python -c "from jupyterlab.commands import get_app_dir; print(get_app_dir())")
  for d in "$real_app"/*; do ln -s "$d" "$APP/$(basename "$d")"; done
  ln -s "$ROOT/$UI/node_modules" "$APP/browser_test/node_modules"
  echo '{"name": "browser_test", "private": true}' >"$APP/browser_test/package.json"
  export PLAYWRIGHT_BROWSERS_PATH=$TMP/ms-playwright
  rev() { python -c "import json,sys; print(next(b['revision'] for b in json.load(open(sys.argv[1]))['browsers'] if b['name'] == sys.argv[2]))" "$UI/node_modules/playwright-core/browsers.json" "$1"; }
  fake() {  # fake <dir> <path inside> <target>: an "installed" Playwright download that is a link
    mkdir -p "$PLAYWRIGHT_BROWSERS_PATH/$1/$(dirname "$2")"
    ln -s "$3" "$PLAYWRIGHT_BROWSERS_PATH/$1/$2"
    touch "$PLAYWRIGHT_BROWSERS_PATH/$1/INSTALLATION_COMPLETE"
  }
  fake "chromium-$(rev chromium)" chrome-linux64/chrome "$CHROMIUM"
  fake "chromium_headless_shell-$(rev chromium-headless-shell)" chrome-headless-shell-linux64/chrome-headless-shell "$CHROMIUM"
  fake "ffmpeg-$(rev ffmpeg)" ffmpeg-linux "$(command -v ffmpeg || echo /bin/false)"  # video is off
  (cd "$TMP" && JUPYTERLAB_DIR=$APP python -m jupyterlab.browser_check \
      --ServerApp.allow_root=True --ServerApp.root_dir="$AEROFS_UI_ROOT" \
      --LabServerApp.extra_labextensions_path="$AEROFS_UI_LABEXTENSIONS") || status=$?
fi
exit $status
