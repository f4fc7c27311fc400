"""log-sessions against the Python regex reference and GoAccess."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline

sys.path.insert(0, str(Path(__file__).parent))
from reference import analyse, generate


def run(paths, dst=None, **opts):
    spec = get_pipeline("log-sessions")
    return spec.run([str(p) for p in paths], dst, spec.options({"src": "x", **opts}), _engine.Progress())


def sessions_of(out):
    t = out.tables["sessions"]
    return [
        (
            r["ip"],
            r["user_agent"],
            int(r["start"].timestamp()),
            int(r["end"].timestamp()),
            r["requests"],
            r["pages"],
            r["bytes"],
        )
        for r in t.to_pylist()
    ]


def ref_sessions(ref):
    return [
        (s["ip"], s["ua"], s["start"], s["end"], s["requests"], s["pages"], s["bytes"])
        for s in ref["sessions"]
    ]


@pytest.mark.parametrize("seed,chunk", [(1, 8 << 20), (2, 97), (3, 4096)])
def test_equals_reference(tmp_path, seed, chunk):
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, seed)) + "\n")
    out = run([p], chunk_size=chunk)
    ref = analyse([str(p)])
    for k in ("requests", "bytes", "unique_visitors", "unparsed_lines"):
        assert out.summary[k] == ref[k], k
    assert out.summary["sessions"] == len(ref["sessions"])
    assert sessions_of(out) == ref_sessions(ref)


def test_rotated_files_gz_and_outputs(tmp_path):
    lines = generate(2000, 7)
    a, b = tmp_path / "access.log.1.gz", tmp_path / "access.log"
    a.write_bytes(gzip.compress(("\n".join(lines[:1000]) + "\n").encode()))
    b.write_text("\n".join(lines[1000:]) + "\n")
    whole = tmp_path / "whole.log"
    whole.write_text("\n".join(lines) + "\n")
    dst = tmp_path / "out"
    out = run([b, a], dst=str(dst))
    ref = run([whole])
    assert sessions_of(out) == sessions_of(ref)
    assert sorted(Path(o).name for o in out.outputs) == ["report.html", "sessions.parquet", "summary.json"]
    assert pq.read_table(dst / "sessions.parquet").num_rows == out.summary["sessions"]
    assert json.loads((dst / "summary.json").read_text())["requests"] == out.summary["requests"]
    page = (dst / "report.html").read_text()
    assert "<svg" in page and "http" not in page.split("</table>")[0].replace("http://ref", "")
    samples = out.summary["unparsed_samples"]
    assert samples and all({"file", "line", "text"} <= set(s) for s in samples)
    for s in samples:
        if s["file"] == str(b):
            assert lines[1000 + s["line"] - 1] == s["text"]


def test_merge_of_tasks_equals_one_pass(tmp_path):
    lines = generate(3000, 11, shuffle=0)
    paths = []
    for i in range(3):
        p = tmp_path / f"part{i}.log"
        p.write_text("\n".join(lines[i * 1000 : (i + 1) * 1000]) + "\n")
        paths.append(p)
    spec = get_pipeline("log-sessions")
    opts = spec.options({"src": "x"})
    parts = [spec.run([str(p)], None, opts, _engine.Progress()) for p in paths]
    merged = spec.merge(parts, None, opts)
    whole = run(paths)
    assert sessions_of(merged) == sessions_of(whole)
    assert merged.summary["requests"] == whole.summary["requests"]


@pytest.mark.skipif(shutil.which("goaccess") is None, reason="goaccess not installed")
def test_agrees_with_goaccess(tmp_path):
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, 5, malformed=0, shuffle=0)) + "\n")
    doc = json.loads(
        subprocess.run(
            ["goaccess", str(p), "--log-format=COMBINED", "-o", "json", "--no-global-config"],
            capture_output=True, check=True, text=True,
        ).stdout
    )  # fmt: skip
    g = doc["general"]
    out = run([p])
    assert out.summary["requests"] == g["valid_requests"]
    assert out.summary["unique_visitors"] == g["unique_visitors"]
    assert out.summary["bytes"] == g["bandwidth"]


def test_bad_options_and_missing_file(tmp_path):
    with pytest.raises(_engine.OptionsError):
        _engine.log_sessions([], '{"session_key": "cookie"}', _engine.Progress())
    out = run([tmp_path / "missing.log"])
    assert out.errors and out.errors[0]["path"].endswith("missing.log")
