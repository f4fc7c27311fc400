"""The CLI through Typer's runner and as a real subprocess: options from the schema, exit codes, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from aerofs_kernel import cli
from aerofs_kernel.pipelines import get_pipeline

runner = CliRunner()


def test_parse_options_from_schema() -> None:
    schema = get_pipeline("csv-to-parquet").schema
    opts = cli.parse_options(
        schema,
        ["--layout", "partitioned", "--partition-by", "year", "--partition-by", "month", "--no-header",
         "--row-group-size=1000", "--columns", "a=int64,b=string", "--delimiter", ";", "--compression-level", "null"],
    )  # fmt: skip
    assert opts == {
        "layout": "partitioned",
        "partition_by": ["year", "month"],
        "header": False,
        "row_group_size": 1000,
        "columns": {"a": "int64", "b": "string"},
        "delimiter": ";",
        "compression_level": None,
    }
    with pytest.raises(cli.UsageError, match="unknown option --nope"):
        cli.parse_options(schema, ["--nope", "1"])
    with pytest.raises(cli.UsageError, match="needs a value"):
        cli.parse_options(schema, ["--layout"])


def test_run_json_and_exit_codes(csv_tree: Path, tmp_path: Path) -> None:
    r = runner.invoke(cli.app, ["run", "csv-to-parquet", str(csv_tree), str(tmp_path / "a"), "--json"])
    assert r.exit_code == cli.EXIT_PARTIAL, r.output  # finished, with the bad row reported
    doc = json.loads(r.stdout)
    assert set(doc) >= {"pipeline", "summary", "outputs", "errors"} and doc["pipeline"] == "csv-to-parquet"
    assert {"files", "rows", "bytes_in", "bytes_out"} <= set(doc["summary"])
    assert doc["errors"][0]["line"] == 3
    r = runner.invoke(
        cli.app, ["run", "csv-to-parquet", str(csv_tree), str(tmp_path / "b"), "--exclude", "bad*", "--json"]
    )
    assert r.exit_code == cli.EXIT_OK and json.loads(r.stdout)["errors"] == []
    r = runner.invoke(cli.app, ["run", "csv-to-parquet", str(csv_tree), str(tmp_path / "c"), "--layout", "x"])
    assert r.exit_code == cli.EXIT_USAGE and "$.layout" in r.output
    r = runner.invoke(cli.app, ["run", "nope", str(csv_tree)])
    assert r.exit_code == cli.EXIT_USAGE and "unknown pipeline" in r.output
    r = runner.invoke(cli.app, ["run", "csv-to-parquet", str(tmp_path / "missing"), str(tmp_path / "d")])
    assert r.exit_code == cli.EXIT_USAGE and "no such file" in r.output
    # on_error=fail with a malformed row: the run stops, exit 1, nothing half-written.
    r = runner.invoke(
        cli.app, ["run", "csv-to-parquet", str(csv_tree / "sub" / "bad.csv"), str(tmp_path / "e"),
                  "--malformed", "fail", "--on-error", "fail", "--json"],
    )  # fmt: skip
    assert r.exit_code == cli.EXIT_FAILED, r.output
    assert "bad.csv" in r.output
    assert not list((tmp_path / "e").rglob("*.parquet")) if (tmp_path / "e").exists() else True


def test_pipelines_and_help() -> None:
    r = runner.invoke(cli.app, ["pipelines", "--json"])
    assert r.exit_code == 0
    names = {p["name"] for p in json.loads(r.stdout)}
    assert {"csv-to-parquet", "exif"} <= names
    r = runner.invoke(cli.app, ["pipelines", "csv-to-parquet"])
    assert "--partition-by" in r.stdout and "default" in r.stdout
    r = runner.invoke(cli.app, ["--help"])
    assert r.exit_code == 0 and "Examples" in r.stdout and "Exit codes" in r.stdout


def test_job_commands_without_server(monkeypatch: Any) -> None:
    import aerofs_kernel.client as client

    for k in ("AEROFS_SERVER_URL", "JUPYTER_SERVER_URL", "JUPYTERHUB_SERVICE_PREFIX"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(client, "_from_runtime_files", lambda: None)
    r = runner.invoke(cli.app, ["jobs", "list"])
    assert r.exit_code == cli.EXIT_SERVER and "no job server" in r.output
    r = runner.invoke(cli.app, ["jobs", "show", "1", "--url", "http://127.0.0.1:9"])
    assert r.exit_code == cli.EXIT_SERVER and "cannot reach" in r.output


def test_real_subprocess(csv_tree: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "aerofs"
    env = {**os.environ, "COLUMNS": "120"}
    p = subprocess.run(
        [str(exe), "run", "csv-to-parquet", str(csv_tree / "one.csv"), str(tmp_path / "one.parquet"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["outputs"] == [str(tmp_path / "one.parquet")]
    assert pq.read_table(tmp_path / "one.parquet").num_rows == 2
    p = subprocess.run([str(exe), "run", "csv-to-parquet", str(csv_tree), str(tmp_path / "x"), "--bogus", "1"],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert p.returncode == 2 and "unknown option --bogus" in p.stderr


def test_options_before_and_between_positionals(csv_tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "m.parquet"
    r = runner.invoke(
        cli.app,
        [
            "run",
            "csv-to-parquet",
            "--layout",
            "merged",
            str(csv_tree),
            "--exclude",
            "bad*",
            str(dst),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["outputs"] == [str(dst)]
    assert sorted(pq.read_table(dst).column("id").to_pylist()) == [1, 2, 3]
    r = runner.invoke(cli.app, ["run", "csv-to-parquet", str(csv_tree), "a", "b"])
    assert r.exit_code == cli.EXIT_USAGE and "expected SRC [DST]" in r.output


def test_worker_without_a_database_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # `aerofs worker` runs jobserver.worker (its own suite runs real workers); here: the usage error.
    for k in ("AEROFS_DATABASE_URL", "AEROFS_REDIS_URL"):
        monkeypatch.delenv(k, raising=False)
    exe = Path(sys.executable).parent / "aerofs"
    r = subprocess.run([str(exe), "worker"], capture_output=True, text=True, timeout=120)
    assert r.returncode == cli.EXIT_USAGE, r.stderr
    assert "AEROFS_DATABASE_URL" in r.stderr + r.stdout


def test_ctrl_c_stops_a_run_with_exit_130_and_no_partial_file(many_big: Path, tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "out"
    exe = Path(sys.executable).parent / "aerofs"
    p = subprocess.Popen(
        [str(exe), "run", "csv-to-parquet", str(many_big), str(out), "--threads", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As in a terminal: a test runner started in the background (`pytest &`) ignores SIGINT and
        # its children inherit that; Python then never installs its KeyboardInterrupt handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    stdout, stderr = p.communicate(timeout=30)
    took = time.monotonic() - t0
    assert p.returncode == cli.EXIT_INTERRUPTED, stderr
    assert json.loads(stdout)["error"] == "interrupted"
    assert took < 1.5, took
    finished = sorted(out.rglob("*"))
    assert all(f.suffix == ".parquet" and not f.name.startswith(".") for f in finished), finished
    assert len(finished) < 20
    for f in finished:  # whatever is there is complete
        assert pq.read_table(f).num_rows == 1_500_000
