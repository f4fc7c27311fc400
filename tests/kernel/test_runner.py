"""The job code path: plan_job / run_task / merge_job give what run_pipeline gives; tasks resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine, runner
from aerofs_kernel.pipelines.base import Pipeline, RunOutput


def _job(pipeline: str, params: dict[str, Any], workdir: Path, max_tasks: int) -> tuple[list[dict], dict]:
    tasks = runner.plan_job(pipeline, params, max_tasks)
    json.dumps(tasks)  # JSON-able
    partials = [runner.run_task(pipeline, params, t, _engine.Progress(), str(workdir)) for t in tasks]
    json.dumps(partials)
    return partials, runner.merge_job(pipeline, params, partials, str(workdir))


def test_job_equals_interactive_run(csv_tree: Path, tmp_path: Path) -> None:
    inter = runner.run_pipeline("csv-to-parquet", {"src": str(csv_tree), "dst": str(tmp_path / "a")})
    tasks = runner.plan_job("csv-to-parquet", {"src": str(csv_tree), "dst": str(tmp_path / "b")}, 3)
    assert len(tasks) == 3 and sorted(len(t["inputs"]) for t in tasks) == [1, 1, 1]
    _, merged = _job("csv-to-parquet", {"src": str(csv_tree), "dst": str(tmp_path / "b")}, tmp_path / "w", 3)
    rel = lambda outs, root: sorted(Path(p).relative_to(root).as_posix() for p in outs)  # noqa: E731
    assert rel(merged["outputs"], tmp_path / "b") == rel(inter.outputs, tmp_path / "a")
    assert merged["summary"]["rows"] == inter.summary["rows"] == 4
    assert [e["line"] for e in merged["errors"]] == [e["line"] for e in inter.errors]
    for name in ("one.parquet", "sub/two.parquet", "sub/bad.parquet"):
        assert pq.read_table(tmp_path / "b" / name).equals(pq.read_table(tmp_path / "a" / name))


def test_finished_task_is_not_run_again_and_retry_overwrites(csv_tree: Path, tmp_path: Path) -> None:
    params = {"src": str(csv_tree), "dst": str(tmp_path / "o")}
    (task,) = runner.plan_job("csv-to-parquet", params, 1)
    first = runner.run_task("csv-to-parquet", params, task, _engine.Progress(), str(tmp_path / "w"))
    out = Path(first["outputs"][0])
    mtime = out.stat().st_mtime_ns
    again = runner.run_task("csv-to-parquet", params, task, _engine.Progress(), str(tmp_path / "w"))
    assert again.get("resumed") is True and out.stat().st_mtime_ns == mtime
    # A task whose record is gone (its worker died before finishing) runs again and overwrites its outputs.
    os.remove(tmp_path / "w" / "task-0.json")
    out.write_bytes(b"half-written garbage")
    redo = runner.run_task("csv-to-parquet", params, task, _engine.Progress(), str(tmp_path / "w"))
    assert "resumed" not in redo
    assert pq.read_table(out).num_rows == 2


def test_validation_errors(csv_tree: Path) -> None:
    with pytest.raises(_engine.OptionsError, match=r"\$\.dst"):
        runner.plan_job("csv-to-parquet", {"src": str(csv_tree)}, 2)
    with pytest.raises(_engine.OptionsError, match=r"\$\.src"):
        runner.plan_job("csv-to-parquet", {"src": str(csv_tree / "nothing-here"), "dst": "x"}, 2)
    with pytest.raises(_engine.OptionsError, match="unknown pipeline"):
        runner.plan_job("no-such", {"src": "x"}, 2)


class _Upper(Pipeline):
    """Test-only: uppercases text inputs into a table; the merge writes one Parquet file."""

    name = "test-upper"
    title = "Upper"
    description = "test"
    schema = {
        "type": "object",
        "required": ["src"],
        "additionalProperties": False,
        "properties": {
            "src": {},
            "dst": {"type": ["string", "null"]},
            "suffix": {"type": "string", "default": "!"},
        },
    }
    input_suffixes = (".txt",)

    def run(self, inputs: list[str], dst: str | None, options: dict[str, Any], progress: Any) -> RunOutput:
        lines = [Path(p).read_text().upper() + options["suffix"] for p in inputs]
        t = pa.table({"line": lines})
        out = RunOutput(summary={"lines": len(lines)}, tables={"table": t})
        if dst:
            pq.write_table(t, dst)
            out.outputs = [dst]
        return out

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        m = super().merge(parts, dst, options)
        if dst:
            pq.write_table(m.tables["table"], dst)
            m.outputs = [dst]
        return m


def test_tables_travel_through_workdir_and_merge_writes_dst(tmp_path: Path, register_pipeline: Any) -> None:
    register_pipeline(_Upper())
    src = tmp_path / "t"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.txt").write_text(f"line {i}")
    params = {"src": str(src), "dst": str(tmp_path / "up.parquet"), "suffix": "?"}
    partials, merged = _job("test-upper", params, tmp_path / "w", 3)
    assert len(partials) == 3 and all(Path(p).exists() for part in partials for p in part["tables"].values())
    assert merged["summary"] == {"lines": 5} and merged["outputs"] == [str(tmp_path / "up.parquet")]
    assert sorted(pq.read_table(tmp_path / "up.parquet").column("line").to_pylist()) == [
        f"LINE {i}?" for i in range(5)
    ]
