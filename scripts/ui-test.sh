#!/usr/bin/env bash
# UI tests in Debian's headless Chromium, driven by Playwright (no browser is downloaded), each suite
# against a real Jupyter server of its own that runs the real AeroFS job server on its embedded default
# (SQLite + local worker pool), on a free loopback port and a scratch folder of sample data:
#   scripts/ui-test.sh [all]         all three suites
#   scripts/ui-test.sh lab           JupyterLab: the Galata tests (labextension/ui-tests/tests/), then
#                                    `python -m jupyterlab.browser_check`
#   scripts/ui-test.sh notebook7     Notebook 7 (`jupyter notebook`): AeroFS's widgets in a notebook page
#                                    (labextension/ui-tests/notebook7/)
#   scripts/ui-test.sh widget-host   AeroFS's widgets in a plain page with no JupyterLab front end (a
#                                    jupyterlab-manager WidgetManager built as VS Code's notebook webview
#                                    builds it) on a kernel of `jupyter server` (labextension/ui-tests/widget-host/)
# Further arguments go to Playwright, e.g. `scripts/ui-test.sh lab -g cancel`.
# The suites share one npm package (labextension/ui-tests: package.json + lock file), one Playwright
# config base (playwright.base.js) and one Jupyter server config (jupyter_server_test_config.py).
# Artifacts: labextension/ui-tests/test-results/<suite>/, screenshots/, playwright-report/<suite>/, and
# the servers' logs under test-results/logs/. With UPDATE_SCREENSHOTS=1 the dashboard screenshot is also
# copied to docs/images/sidebar.png (the README's); a plain run leaves the tracked tree untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
log() { printf '\033[1m[ui-test]\033[0m %s\n' "$*"; }
die() { echo "ui-test: $*" >&2; exit 1; }
WHAT=${1:-all}
[ $# -gt 0 ] && shift
case "$WHAT" in lab | notebook7 | widget-host | all) ;; *) die "unknown suite '$WHAT' (lab, notebook7, widget-host or all)" ;; esac
want() { [ "$WHAT" = all ] || [ "$WHAT" = "$1" ]; }

CHROMIUM=${AEROFS_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || die "$CHROMIUM not found (apt-get install chromium)"
python -c "import jobserver" 2>/dev/null || die "the jobserver package does not import in .venv (scripts/setup.sh)"
if want notebook7; then
  python -c "import notebook, sys; sys.exit(int(notebook.__version__.split('.')[0]) < 7)" 2>/dev/null ||
    die "Notebook 7 (the notebook>=7 package of the dev extra) is not installed in .venv (scripts/setup.sh)"
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 AEROFS_CHROMIUM=$CHROMIUM

# --- the labextension as built from this checkout, and the tests' npm package from its lock file ----
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

# --- a scratch world: Jupyter root with sample data, Jupyter dirs, labextensions path, temp files ---
# The embedded default, whatever this shell holds: no database, Redis, remote job server, token or other
# AeroFS setting reaches the servers or their kernels (a kernel's submit finds its own server).
for v in $(compgen -v | grep -E '^(AEROFS_|JUPYTERHUB_)' || true); do [ "$v" = AEROFS_CHROMIUM ] || unset "$v"; done
unset JUPYTER_SERVER_URL JUPYTER_TOKEN
TMP=$(mktemp -d /tmp/aerofs-ui.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
# Galata's server helper, Chromium profiles and kernels make temporary files: all under $TMP.
export TMPDIR=$TMP/tmp
export AEROFS_UI_ROOT=$TMP/root AEROFS_UI_LABEXTENSIONS=$TMP/labextensions
export JUPYTER_DATA_DIR=$TMP/data JUPYTER_RUNTIME_DIR=$TMP/runtime JUPYTER_CONFIG_DIR=$TMP/config
mkdir -p "$TMPDIR" "$AEROFS_UI_ROOT" "$AEROFS_UI_LABEXTENSIONS" "$JUPYTER_DATA_DIR" "$JUPYTER_RUNTIME_DIR" "$JUPYTER_CONFIG_DIR"
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

log "scratch folder ready ($SECONDS s)"
rm -rf $UI/test-results $UI/playwright-report
export AEROFS_UI_LOGS=$ROOT/$UI/test-results/logs
mkdir -p "$AEROFS_UI_LOGS"
free_port() { python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }

# run_suite NAME CONFIG [playwright args]: one Playwright run against a fresh server on a free port.
run_suite() {
  local name=$1 config=$2 rc=0 start=$SECONDS
  shift 2
  export AEROFS_UI_PORT; AEROFS_UI_PORT=$(free_port)
  log "$name: Playwright + Chromium ($CHROMIUM), server on 127.0.0.1:$AEROFS_UI_PORT"
  (cd $UI && node_modules/.bin/playwright test -c "$config" "$@") || rc=$?
  log "$name: $((SECONDS - start)) s"
  if [ $rc != 0 ] && [ -f "$AEROFS_UI_LOGS/$name-server.log" ]; then
    log "$name failed; the server's last lines ($UI/test-results/logs/$name-server.log):"
    tail -n 40 "$AEROFS_UI_LOGS/$name-server.log"
  fi
  return $rc
}

status=0
if want lab; then
  run_suite lab playwright.config.js "$@" || status=1
  if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ] && [ -f $UI/test-results/screenshots/sidebar.png ]; then
    mkdir -p docs/images
    cp $UI/test-results/screenshots/sidebar.png docs/images/sidebar.png
    log "dashboard screenshot (real job server): docs/images/sidebar.png"
  fi

  log "lab: python -m jupyterlab.browser_check"
  start=$SECONDS
  # browser_check installs Playwright and a browser of its own in <app dir>/browser_test: give it a
  # scratch app dir (linking the real one's assets), the ui-tests' Playwright, and Debian's Chromium
  # where Playwright looks for its headless shell, so nothing is downloaded.
  APP=$TMP/lab-app
  mkdir -p "$APP/browser_test"
  real_app=$(python -c "from jupyterlab.commands import get_app_dir; print(get_app_dir())")
  for d in "$real_app"/*; do ln -s "$d" "$APP/$(basename "$d")"; done
  ln -s "$ROOT/$UI/node_modules" "$APP/browser_test/node_modules"
  echo '{"name": "browser_test", "private": true}' >"$APP/browser_test/package.json"
  rev() { python -c "import json,sys; print(next(b['revision'] for b in json.load(open(sys.argv[1]))['browsers'] if b['name'] == sys.argv[2]))" "$UI/node_modules/playwright-core/browsers.json" "$1"; }
  fake() {  # fake <dir> <path inside> <target>: an "installed" Playwright download that is a link
    mkdir -p "$PLAYWRIGHT_BROWSERS_PATH/$1/$(dirname "$2")"
    ln -s "$3" "$PLAYWRIGHT_BROWSERS_PATH/$1/$2"
    touch "$PLAYWRIGHT_BROWSERS_PATH/$1/INSTALLATION_COMPLETE"
  }
  if (
    export PLAYWRIGHT_BROWSERS_PATH=$TMP/ms-playwright
    fake "chromium-$(rev chromium)" chrome-linux64/chrome "$CHROMIUM"
    fake "chromium_headless_shell-$(rev chromium-headless-shell)" chrome-headless-shell-linux64/chrome-headless-shell "$CHROMIUM"
    fake "ffmpeg-$(rev ffmpeg)" ffmpeg-linux "$(command -v ffmpeg || echo /bin/false)" # video is off
    cd "$TMP" && JUPYTERLAB_DIR=$APP python -m jupyterlab.browser_check \
      --ServerApp.allow_root=True --ServerApp.root_dir="$AEROFS_UI_ROOT" \
      --LabServerApp.extra_labextensions_path="$AEROFS_UI_LABEXTENSIONS" \
      >"$AEROFS_UI_LOGS/browser-check.log" 2>&1
  ); then
    log "lab: browser_check passed ($((SECONDS - start)) s)"
  else
    status=1
    log "lab: browser_check failed; its last lines ($UI/test-results/logs/browser-check.log):"
    tail -n 40 "$AEROFS_UI_LOGS/browser-check.log"
  fi
fi

if want notebook7; then
  run_suite notebook7 playwright.notebook7.config.js "$@" || status=1
fi
if want widget-host; then
  run_suite widget-host playwright.widget-host.config.js "$@" || status=1
fi
log "$WHAT: $SECONDS s in all"
exit $status
