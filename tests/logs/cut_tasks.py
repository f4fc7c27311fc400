"""The sessions tables of a job's tasks, made by hand: byte ranges of one log run one by one, as a job's
tasks would run them (the merge tests' input)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline


def cut_runs(
    data: bytes, path: Path, cuts: list[int], key: str, timeout_min: float, chunk: int = 4096
) -> list[pa.Table]:
    """The sessions tables of tasks over byte ranges of ``path`` (holding ``data``) cut at ``cuts`` (any
    byte, so a cut may fall inside a line; two cuts in one line make an empty task)."""
    spec = get_pipeline("log-sessions")
    opts = spec.options({"src": "x", "session_key": key, "timeout_minutes": timeout_min, "chunk_size": chunk})
    bounds = [0, *sorted(cuts), len(data)]
    return [
        spec.run([f"{path}#bytes={a}-{b}"], None, opts, _engine.Progress()).tables["sessions"]
        for a, b in itertools.pairwise(bounds)
    ]
