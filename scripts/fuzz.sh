#!/usr/bin/env bash
# Fuzzing the engine with cargo-fuzz (libFuzzer).
#   scripts/fuzz.sh smoke           every target in engine/fuzz/fuzz_targets, a short fixed number of runs (CI)
#   scripts/fuzz.sh TARGET [ARGS]   one target, as long as you like (e.g. -max_total_time=600)
# Smoke runs build without AddressSanitizer (FUZZ_SANITIZER=none): instrumenting arrow and parquet
# with ASan costs a 2-core CI machine tens of minutes, while what a short run finds — panics,
# overflows (debug assertions stay on), hangs — needs no sanitizer. Long runs keep ASan.
# cargo-fuzz needs nightly features: the nightly toolchain when installed, else stable with
# RUSTC_BOOTSTRAP=1. cargo-fuzz itself is installed from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${FUZZ_RUNS:-20000}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    CARGO=(cargo +nightly)
else
    export RUSTC_BOOTSTRAP=1
    CARGO=(cargo)
fi
# The fuzz build has its own flags (sanitizer, coverage): keep it out of the shared target dir.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${HOME}/.cache/aerofs/fuzz-target}"

run_target() {
    local target="$1"; shift
    mkdir -p "engine/fuzz/corpus/$target"
    # cargo-fuzz runs from engine/: paths below are relative to it
    (cd engine && "${CARGO[@]}" fuzz run --sanitizer "$SANITIZER" --fuzz-dir fuzz "$target" \
        "fuzz/corpus/$target" -- "$@")
}

case "${1:-smoke}" in
    smoke)
        SANITIZER="${FUZZ_SANITIZER:-none}"
        status=0
        for f in engine/fuzz/fuzz_targets/*.rs; do
            t="$(basename "$f" .rs)"
            echo "== fuzz $t: $RUNS runs"
            run_target "$t" -runs="$RUNS" -max_total_time=60 -max_len=4096 || status=1
        done
        exit $status
        ;;
    *)
        SANITIZER="${FUZZ_SANITIZER:-address}"
        t="$1"; shift
        run_target "$t" "$@"
        ;;
esac
