"""The sessions tables of a job's tasks, made by hand (the merge tests' input): byte ranges of one log,
or whole files of the same hours (servers behind a load balancer), run one by one as a job's tasks
would run them."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline


def _options(key: str, timeout_min: float, chunk: int) -> dict:
    spec = get_pipeline("log-sessions")
    return spec.options({"src": "x", "session_key": key, "timeout_minutes": timeout_min, "chunk_size": chunk})


def cut_runs(
    data: bytes, path: Path, cuts: list[int], key: str, timeout_min: float, chunk: int = 4096
) -> list[pa.Table]:
    """The sessions tables of tasks over byte ranges of ``path`` (holding ``data``) cut at ``cuts`` (any
    byte, so a cut may fall inside a line; two cuts in one line make an empty task)."""
    spec, opts = get_pipeline("log-sessions"), _options(key, timeout_min, chunk)
    bounds = [0, *sorted(cuts), len(data)]
    return [
        spec.run([f"{path}#bytes={a}-{b}"], None, opts, _engine.Progress()).tables["sessions"]
        for a, b in itertools.pairwise(bounds)
    ]


def file_runs(
    lines: list[str],
    folder: Path,
    deal: list[int],
    files: int,
    key: str,
    timeout_min: float,
    chunk: int = 4096,
) -> list[pa.Table]:
    """The sessions tables of ``files`` whole-file tasks: line i goes to ``folder``/server-``deal[i]``.log
    (in order), as a load balancer deals one log's requests to its servers (a server may get none: an
    empty log); each file one task. The files cover the same hours and one visitor's requests land in
    several (its pieces overlap in time)."""
    spec, opts = get_pipeline("log-sessions"), _options(key, timeout_min, chunk)
    mine: list[list[str]] = [[] for _ in range(files)]
    for line, server in zip(lines, deal, strict=True):
        mine[server].append(line)
    tables = []
    for server, served in enumerate(mine):
        path = folder / f"server-{server}.log"
        path.write_text("".join(f"{x}\n" for x in served))
        tables.append(spec.run([str(path)], None, opts, _engine.Progress()).tables["sessions"])
    return tables


def one_run(paths: list[Path], key: str, timeout_min: float, chunk: int = 4096) -> pa.Table:
    """The sessions table of the interactive run over ``paths`` (in that order: a tie in time goes by
    input order), with the options of the tasks above: what their merge must equal."""
    spec, opts = get_pipeline("log-sessions"), _options(key, timeout_min, chunk)
    return spec.run([str(p) for p in paths], None, opts, _engine.Progress()).tables["sessions"]
