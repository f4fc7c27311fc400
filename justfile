# AeroFS task runner. `just --list` shows every recipe.
#   just demo   set everything up, run every pipeline through the job server, print the results
#   just lab    JupyterLab on the embedded default, opened on the example notebooks
#   just test   the whole test suite (installs and starts PostgreSQL, Redis and an S3 server)

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

root := justfile_directory()
venv := root / ".venv"
py := venv / "bin/python"
# Compiled Rust is cached outside the clone, so a fresh clone on the same machine reuses it; cargo's
# own fingerprints (sources, Cargo.lock, flags) decide what is rebuilt, so the cache stays honest.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/aerofs/target")
export PATH := venv / "bin:" + env_var("PATH")

default:
    @just --list

# Install everything the project needs: system packages, Python venv, Node packages, the dev build.
setup:
    scripts/setup.sh

# Build the wheel (labextension with npm first, then maturin) into dist/.
build: setup
    scripts/build.sh wheel

# Rebuild the engine and labextension into the dev environment (after `setup`).
develop:
    scripts/build.sh develop

# Headless demo: sample data, every pipeline through the job server (embedded default), results.
demo: setup
    {{py}} -m aerofs_kernel.demo

# JupyterLab on the embedded default, opened on the example notebooks with sample data.
lab: setup
    {{py}} -m aerofs_kernel.demo --data-only
    {{venv}}/bin/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir={{root}}/notebooks

# Every check and test; stops at the first failure. The last lines are pytest's summary.
test: setup
    scripts/test.sh

# Benchmarks side by side with the peers: `just bench csv|words|logs|exif|server|all`.
bench what="all": setup
    {{py}} bench/run.py {{what}}

lint: setup
    scripts/test.sh lint

fmt:
    cargo fmt --all
    {{venv}}/bin/ruff format aerofs_kernel jobserver tests bench scripts
    {{venv}}/bin/ruff check --fix aerofs_kernel jobserver tests bench scripts
    cd labextension && npx prettier --write "src/**/*.{ts,tsx,css,js}" "ui-tests/**/*.ts" "style/**/*.{css,js}"
