"""A log-sessions job's task writes its sessions table with the engine, as the run goes, into its file
in the job's work folder (``LogSessions.run_task``): the task never holds the table, the file is whole
or absent, and a finished task is not run again."""

from __future__ import annotations

import itertools
import json
import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine, runner
from aerofs_kernel.pipelines import get_pipeline
from aerofs_kernel.pipelines import log_sessions as ls
from aerofs_kernel.pipelines.base import TaskTables
from aerofs_kernel.result import ParquetTable, peek

sys.path.insert(0, str(Path(__file__).parent))
from reference import generate


@pytest.fixture
def log(tmp_path, monkeypatch) -> Path:
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(4000, 59, shuffle=0.03)) + "\n")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)  # cut into ranges however small
    return p


@pytest.fixture
def engine_calls(monkeypatch) -> list[dict]:
    """The options of every engine call."""
    calls: list[dict] = []
    real = _engine.log_sessions

    def spy(paths, options, progress):
        calls.append(json.loads(options))
        return real(paths, options, progress)

    monkeypatch.setattr(_engine, "log_sessions", spy)
    return calls


def _plan(log: Path, tasks: int) -> tuple[dict, list[dict]]:
    params = {"src": str(log), "dst": str(log.parent / "dst")}
    return params, runner.plan_job("log-sessions", params, tasks)


def test_the_engine_writes_a_tasks_sessions_file_and_the_task_holds_no_table(
    tmp_path, log, monkeypatch, engine_calls
):
    monkeypatch.setattr(runner, "TASK_ROW_GROUP_ROWS", 64)  # several row groups on this small log
    written: list[str] = []
    write = pq.write_table
    monkeypatch.setattr(
        pq, "write_table", lambda t, where, **kw: written.append(str(where)) or write(t, where, **kw)
    )
    params, plan = _plan(log, 3)
    work = tmp_path / "work"
    spec = get_pipeline("log-sessions")
    partials = [runner.run_task("log-sessions", params, t, _engine.Progress(), str(work)) for t in plan]
    for task, partial in zip(plan, partials, strict=True):
        n = task["index"]
        path = str(work / f"task-{n}-sessions.parquet")
        assert partial["tables"]["sessions"] == path
        # The engine was given the file (and the runner's row groups); Python wrote only the others.
        assert {"sessions_file": path, "row_group_rows": 64}.items() <= engine_calls[n].items()
        assert "output_dir" not in engine_calls[n]
        assert not any("sessions" in w for w in written)
        meta = pq.read_metadata(path)
        assert meta.num_rows and all(meta.row_group(i).num_rows <= 64 for i in range(meta.num_row_groups))
        assert meta.num_row_groups > 1
        for i in range(meta.num_row_groups):  # the merge's spans come from these
            rg = meta.row_group(i)
            stats = {rg.column(j).path_in_schema: rg.column(j).statistics for j in range(rg.num_columns)}
            assert stats["start"].has_min_max and stats["end"].has_min_max
        assert partial["outputs"] == []
    # No summary.json or report.html per task: only the tables (and records) in the work folder.
    assert sorted(p.name for p in work.iterdir()) == sorted(
        f"task-{t['index']}{s}"
        for t in plan
        for s in (".json", "-sessions.parquet", "-visitors.parquet", "-counts.parquet")
    )
    # The task's own result: the sessions table is that file, not read.
    again = tmp_path / "again"
    again.mkdir()
    items = [runner.Input.from_dict(d).engine_item() for d in plan[1]["inputs"]]
    options = spec.options({"src": "x"})
    out = spec.run_task(items, None, options, _engine.Progress(), TaskTables(str(again), 1, 64))
    table = peek(out.tables, "sessions")
    assert isinstance(table, ParquetTable) and table.locate() == str(
        tmp_path / "again" / "task-1-sessions.parquet"
    )
    # ... and equal to the table of the same run in memory (rows, order, ids, types as written).
    whole = spec.run(items, None, options, _engine.Progress()).tables["sessions"]
    assert whole.num_rows > 0
    assert pq.read_table(table.locate()).cast(whole.schema).equals(whole)
    # The job's result is the interactive run's (tests/logs/test_session_stream.py in more cases).
    job = runner.merge_job("log-sessions", params, partials, str(work))
    one = spec.run([str(log)], str(tmp_path / "one"), spec.options({"src": "x"}), _engine.Progress())
    assert pq.read_table(tmp_path / "dst" / "sessions.parquet").equals(
        pq.read_table(tmp_path / "one" / "sessions.parquet")
    )
    assert job["summary"]["sessions"] == one.summary["sessions"]


def test_a_finished_task_with_its_file_is_not_run_again(tmp_path, log, engine_calls):
    params, plan = _plan(log, 2)
    work = tmp_path / "work"
    first = runner.run_task("log-sessions", params, plan[0], _engine.Progress(), str(work))
    assert len(engine_calls) == 1
    again = runner.run_task("log-sessions", params, plan[0], _engine.Progress(), str(work))
    assert again["resumed"] and again["tables"] == first["tables"]
    assert len(engine_calls) == 1
    # Its sessions file gone: the task runs again and writes it.
    Path(first["tables"]["sessions"]).unlink()
    redo = runner.run_task("log-sessions", params, plan[0], _engine.Progress(), str(work))
    assert "resumed" not in redo and len(engine_calls) == 2
    assert (
        pq.read_metadata(redo["tables"]["sessions"]).num_rows
        == pq.read_metadata(first["tables"]["sessions"]).num_rows
    )


def test_a_cancelled_or_failed_task_leaves_no_file(tmp_path, log, monkeypatch):
    params, plan = _plan(log, 2)
    work = tmp_path / "work"
    progress = _engine.Progress()
    progress.cancel()
    with pytest.raises(_engine.Cancelled):
        runner.run_task("log-sessions", params, plan[0], progress, str(work))
    assert list(work.iterdir()) == []  # no sessions file, not even under a temporary name; no record
    # A failed run (its input gone, on_error=fail) the same, and an older file stays as it was.
    (work / "task-0-sessions.parquet").write_text("old")
    params, plan = _plan(log, 2)
    params["on_error"] = "fail"
    log.rename(tmp_path / "gone.log")
    with pytest.raises((_engine.InputError, OSError)):
        runner.run_task("log-sessions", params, plan[0], _engine.Progress(), str(work))
    assert sorted(p.name for p in work.iterdir()) == ["task-0-sessions.parquet"]
    assert (work / "task-0-sessions.parquet").read_text() == "old"


def _least_largest(sizes: list[int], k: int) -> int:
    """The least largest total of any cut of ``sizes`` into ``k`` contiguous groups, by brute force."""
    return min(
        max(sum(sizes[a:b]) for a, b in itertools.pairwise([0, *cut, len(sizes)]))
        for cut in itertools.combinations(range(1, len(sizes)), k - 1)
    )


def test_the_plan_keeps_input_order_in_contiguous_balanced_tasks(monkeypatch):
    # The merge breaks a tie in time by task, as the interactive run breaks it by input order (then
    # byte order): so tasks are contiguous runs of the inputs in their given order (never sorted by
    # name or packed largest first), byte ranges of a big file in byte order, and balanced: no other
    # cut into as many contiguous tasks has a smaller largest task.
    spec = get_pipeline("log-sessions")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1000)
    rnd = random.Random(5)
    for case in range(300):
        n = rnd.randrange(0, 9)
        inputs = [(f"/logs/{rnd.choice('zyxab')}{i}.log" + rnd.choice(["", ".gz"]), rnd.choice([0, 1, 5, 300, 4000]))
                  for i in range(n)]  # fmt: skip
        tasks = rnd.randrange(1, 7)
        items = ls.split_into_ranges(inputs, tasks, ls.SPLIT_BYTES)
        plan = spec.plan(inputs, {}, tasks)
        assert [x for g in plan for x in g] == [x for x, _ in items], case  # input order, ranges in order
        assert len(plan) == min(tasks, len(items)) and all(plan), case
        if plan:
            size = {x: max(s, 1) for x, s in items}
            largest = max(sum(size[x] for x in g) for g in plan)
            assert largest == _least_largest([size[x] for x, _ in items], len(plan)), case
    # A big uncompressed log among others: its ranges in byte order, in consecutive tasks.
    plan = spec.plan([("/b.log", 10), ("/a.log", 5000), ("/c.log.gz", 3000)], {}, 4)
    assert plan == [["/b.log", "/a.log#bytes=0-1667"], ["/a.log#bytes=1667-3334"], ["/a.log#bytes=3334-5000"],
                    ["/c.log.gz"]]  # fmt: skip


def test_a_jobs_tasks_follow_the_order_of_src(tmp_path):
    # src as a list keeps its order; a folder's files come sorted: the tasks follow either, as the
    # interactive run over the same src reads them.
    logs = tmp_path / "logs"
    logs.mkdir()
    for name, n in (("b.log", 300), ("a.log", 100), ("c.log", 200)):
        (logs / name).write_text("\n".join(generate(n, 7)) + "\n")

    def urls(src, tasks):
        plan = runner.plan_job("log-sessions", {"src": src}, tasks)
        return [[runner.Input.from_dict(i).url for i in t["inputs"]] for t in plan]

    given = [str(logs / n) for n in ("c.log", "a.log", "b.log")]
    assert urls(given, 3) == [[x] for x in given]
    assert [x for t in urls(given, 2) for x in t] == given
    assert [x for t in urls(str(logs), 2) for x in t] == [str(logs / n) for n in ("a.log", "b.log", "c.log")]
