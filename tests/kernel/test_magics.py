"""The magics through a real IPython InteractiveShell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from IPython.core.interactiveshell import InteractiveShell

from aerofs_kernel.result import Result


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext aerofs_kernel")
    yield shell
    InteractiveShell.clear_instance()


def test_line_magic_runs_and_returns_result(ip: InteractiveShell, csv_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = ip.run_cell(f"%aerofs csv-to-parquet {csv_tree} {out} --exclude 'bad*' --compression snappy")
    assert r.success, r.error_in_exec
    assert isinstance(r.result, Result) and r.result.summary["files"] == 2
    assert ip.user_ns["_aerofs"] is r.result
    meta = pq.ParquetFile(out / "one.parquet").metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"


def test_line_magic_expands_variables(ip: InteractiveShell, csv_tree: Path, tmp_path: Path) -> None:
    ip.user_ns["src"] = str(csv_tree / "one.csv")
    ip.user_ns["dst"] = str(tmp_path / "x.parquet")
    r = ip.run_cell("%aerofs csv-to-parquet $src $dst")
    assert r.success and r.result.outputs == [str(tmp_path / "x.parquet")]


def test_cell_magic_takes_yaml_options(ip: InteractiveShell, csv_tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "merged.parquet"
    r = ip.run_cell(
        f"%%aerofs csv-to-parquet\nsrc: {csv_tree}\ndst: {dst}\nlayout: merged\nexclude: ['bad*']\n"
    )
    assert r.success, r.error_in_exec
    assert sorted(pq.read_table(dst).column("id").to_pylist()) == [1, 2, 3]
    # Variables expand in the body as in a line magic.
    ip.user_ns["where"] = str(tmp_path / "v.parquet")
    r = ip.run_cell(f"%%aerofs csv-to-parquet {csv_tree / 'one.csv'}\ndst: $where\n")
    assert r.success, r.error_in_exec
    assert r.result.outputs == [str(tmp_path / "v.parquet")]


def test_bad_usage_fails_the_cell_with_a_usage_error(ip: InteractiveShell, csv_tree: Path) -> None:
    from IPython.core.error import UsageError

    r = ip.run_cell(f"%aerofs csv-to-parquet {csv_tree} /tmp/x --frobnicate 3")
    assert isinstance(r.error_in_exec, UsageError) and "unknown option --frobnicate" in str(r.error_in_exec)
    r = ip.run_cell("%%aerofs csv-to-parquet\n- not\n- a mapping\n")
    assert isinstance(r.error_in_exec, UsageError) and "YAML mapping" in str(r.error_in_exec)
    # Engine-side validation errors are real exceptions in the cell.
    r = ip.run_cell(f"%aerofs csv-to-parquet {csv_tree} /tmp/x --layout sideways")
    assert not r.success and "layout" in str(r.error_in_exec)


def test_submit_and_jobs_without_a_server(ip: InteractiveShell, csv_tree: Path, monkeypatch: Any) -> None:
    import aerofs_kernel.client as client

    for k in ("AEROFS_SERVER_URL", "JUPYTER_SERVER_URL", "JUPYTERHUB_SERVICE_PREFIX"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(client, "_from_runtime_files", lambda: None)
    r = ip.run_cell(f"%aerofs submit exif {csv_tree}")
    assert isinstance(r.error_in_exec, client.JobServerError) and "no job server" in str(r.error_in_exec)
