#!/usr/bin/env bash
# Notebook 7 browser check: AeroFS's progress widget in a real Jupyter Notebook 7 (the `notebook`
# package), driven by Playwright in Debian's headless Chromium. Starts and stops what it needs; the
# Playwright install is the Galata tests' one (labextension/ui-tests/node_modules), nothing is downloaded.
#   scripts/ui-test-notebook7.sh
# Artifacts: labextension/notebook7-tests/test-results/ (notebook7-progress.png).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
log() { printf '\033[1m[ui-test-notebook7]\033[0m %s\n' "$*"; }
CHROMIUM=${AEROFS_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "ui-test-notebook7: $CHROMIUM not found (apt-get install chromium)" >&2; exit 1; }
python -c "import notebook, sys; sys.exit(0 if int(notebook.__version__.split('.')[0]) >= 7 else 1)" 2>/dev/null ||
  { echo "ui-test-notebook7: the notebook>=7 package is not installed in .venv (pip install 'notebook>=7')" >&2; exit 1; }
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 AEROFS_CHROMIUM=$CHROMIUM
UI=labextension/ui-tests
NB7=labextension/notebook7-tests
if [ ! -d "$UI/node_modules/@playwright/test" ]; then
  log "npm ci (ui-tests, for its Playwright)"
  (cd $UI && npm ci --no-audit --no-fund --loglevel=error)
fi
[ -e "$NB7/node_modules" ] || ln -s ../ui-tests/node_modules "$NB7/node_modules"

TMP=$(mktemp -d /tmp/aerofs-nb7.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
export AEROFS_NB7_ROOT=$TMP/root AEROFS_NB7_PORT=${AEROFS_NB7_PORT:-8893}
export JUPYTER_DATA_DIR=$TMP/data JUPYTER_RUNTIME_DIR=$TMP/runtime JUPYTER_CONFIG_DIR=$TMP/config
unset AEROFS_DATABASE_URL AEROFS_REDIS_URL AEROFS_JOBSERVER_URL
mkdir -p "$AEROFS_NB7_ROOT" "$JUPYTER_DATA_DIR" "$JUPYTER_RUNTIME_DIR" "$JUPYTER_CONFIG_DIR"
python - "$AEROFS_NB7_ROOT" <<'PY'
import gzip, os, random, sys
import nbformat
root = sys.argv[1]
rnd = random.Random(7)
csv = os.path.join(root, "data", "csv")
os.makedirs(csv)
for name, n in (("sales.csv", 2000), ("more.csv", 500)):
    with open(os.path.join(csv, name), "w") as f:
        f.write("id,region,amount\n")
        for i in range(n):
            f.write(f"{i},{rnd.choice(['north', 'south'])},{rnd.uniform(1, 999):.2f}\n")
# Long enough to cancel: many links to one large gzipped CSV (little disk).
big = os.path.join(root, "data", "big")
os.makedirs(big)
src = os.path.join(root, "data", "big-source.csv.gz")
with gzip.open(src, "wt", compresslevel=1) as f:
    f.write("id,a,b,label\n")
    for i in range(300_000):
        f.write(f"{i},{i * 7 % 1000},{i * 0.5},label{i % 97}\n")
for i in range(400):
    os.symlink(src, os.path.join(big, f"part-{i:04d}.csv.gz"))
nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
nb.cells = [
    nbformat.v4.new_code_cell(
        "import aerofs_kernel as aero\n"
        "r = aero.csv_to_parquet('data/csv', 'out/csv', show_progress='widget')"
    ),
    nbformat.v4.new_code_cell(
        "from aerofs_kernel.widgets import BackgroundRun\n"
        "run = BackgroundRun('csv-to-parquet', {'src': 'data/big', 'dst': 'out/big'}).start()\n"
        "run"
    ),
]
nbformat.write(nb, os.path.join(root, "progress.ipynb"))
PY
log "Playwright + Chromium against Notebook 7 on 127.0.0.1:$AEROFS_NB7_PORT"
cd $NB7 && rm -rf test-results && "$ROOT/$UI/node_modules/.bin/playwright" test -c playwright.config.js
