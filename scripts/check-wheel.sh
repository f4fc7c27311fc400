#!/usr/bin/env bash
# Build the wheel and prove it installs on its own: a new venv, `pip install dist/aerofs-*.whl`, then
# the engine imports and Jupyter lists both extensions as enabled and OK, with no lab rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=$ROOT/.venv/bin:$PATH
rm -f dist/aerofs-*.whl
scripts/build.sh wheel >/dev/null
wheel=$(ls dist/aerofs-*.whl)
venv=$(mktemp -d /tmp/aerofs-wheel-check.XXXXXX)
trap 'rm -rf "$venv"' EXIT
uv venv -q --python "$(command -v python3)" "$venv"
# The lock file pins the dependencies to what the suite was tested with.
uv pip install -q --python "$venv/bin/python" -c requirements/dev.lock "$wheel"
"$venv/bin/python" -c "import aerofs_kernel, jobserver; from aerofs_kernel import _engine; print('import ok, engine', _engine.__version__)"
server=$("$venv/bin/jupyter" server extension list 2>&1)
echo "$server" | grep -E "jobserver.*enabled" >/dev/null || { echo "$server"; echo "server extension jobserver is not enabled" >&2; exit 1; }
echo "$server" | grep -A3 "jobserver" | grep -q "OK" || { echo "$server"; echo "server extension jobserver did not load OK" >&2; exit 1; }
echo "server extension: jobserver enabled, OK"
if [ -d labextension/aerofs_labextension_build ]; then
  lab=$("$venv/bin/jupyter" labextension list 2>&1)
  echo "$lab" | grep -E "aerofs-labextension.*enabled.*OK" >/dev/null || { echo "$lab"; echo "labextension aerofs-labextension is not enabled and OK" >&2; exit 1; }
  echo "labextension: aerofs-labextension enabled, OK"
fi
echo "wheel check passed: $(basename "$wheel")"
