"""log-sessions against the Python regex reference and GoAccess."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline
from aerofs_kernel.pipelines import log_sessions as ls
from aerofs_kernel.pipelines.base import TaskTables

sys.path.insert(0, str(Path(__file__).parent))
from cut_tasks import cut_runs
from reference import analyse, generate, merge_sessions


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


@pytest.mark.parametrize("to_dst", [False, True])
@pytest.mark.parametrize("seed,chunk", [(1, 8 << 20), (2, 97), (3, 4096)])
def test_equals_reference(tmp_path, seed, chunk, to_dst):
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, seed)) + "\n")
    # With dst the engine writes sessions.parquet and the table is read back from it.
    out = run([p], dst=str(tmp_path / "out") if to_dst else None, chunk_size=chunk)
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
    parts = [_task(spec, [str(p)], opts, tmp_path, i) for i, p in enumerate(paths)]
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


def _to_nginx_iso(line: str) -> str | None:
    """A combined line rewritten as ``$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent
    $request_time "$http_referer" "$http_user_agent"`` (None for lines the reference cannot parse)."""
    from datetime import datetime

    from reference import LINE

    m = LINE.match(line)
    if not m:
        return None
    try:
        t = datetime.strptime(m.group(4), "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None
    return (
        f'{m.group(1)} [{t.isoformat()}] "{m.group(5)}" {m.group(6)} {m.group(7)} 0.004 '
        f'"{m.group(8) or "-"}" "{m.group(9) or ""}"'
    )


def test_custom_log_formats_equal_the_built_in_parser(tmp_path):
    lines = generate(2000, 21)
    combined = tmp_path / "combined.log"
    combined.write_text("\n".join(lines) + "\n")
    custom = tmp_path / "custom.log"
    custom.write_text("\n".join(x for x in map(_to_nginx_iso, lines) if x) + "\nnot a line\n")
    ref = run([combined])
    nginx = run(
        [custom],
        log_format='$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent $request_time '
        '"$http_referer" "$http_user_agent"',
    )
    assert sessions_of(nginx) == sessions_of(ref)
    for k in ("requests", "bytes", "unique_visitors", "sessions", "top_pages", "hits_per_hour"):
        assert nginx.summary[k] == ref.summary[k], k
    assert nginx.summary["unparsed_lines"] == 1
    # GoAccess style on the original file: its %d:%t ignores the zone (read as UTC), as GoAccess does.
    goa = run([combined], log_format='%h %^[%d:%t %^] "%r" %s %b "%R" "%u"')
    assert [s[4:] for s in sessions_of(goa)] == [s[4:] for s in sessions_of(ref)]
    for k in ("requests", "bytes", "unique_visitors", "unparsed_lines"):
        assert goa.summary[k] == ref.summary[k], k
    with pytest.raises(_engine.OptionsError, match="no client address"):
        _engine.log_sessions([str(combined)], json.dumps({"log_format": "%s %b"}), _engine.Progress())


def _task(spec, items, opts, folder, index):
    """What a job's task gives the merge (``run_task``: its sessions in a file, the visitors table)."""
    return spec.run_task(items, None, opts, _engine.Progress(), TaskTables(str(folder), index, 1 << 14))


def _plan_run_merge(path, tasks, **extra):
    import aerofs_kernel.pipelines.log_sessions as ls

    spec = get_pipeline("log-sessions")
    old = ls.SPLIT_BYTES
    ls.SPLIT_BYTES = 1
    try:
        batches = spec.plan([(str(path), path.stat().st_size)], {}, tasks)
    finally:
        ls.SPLIT_BYTES = old
    opts = spec.options({"src": "x", **extra})
    parts = [_task(spec, b, opts, path.parent, i) for i, b in enumerate(batches)]  # beside the log
    return batches, parts, spec.merge(parts, None, opts)


def test_byte_range_plan_covers_the_file_contiguously(tmp_path):
    from aerofs_kernel.pipelines.word_count import split_range

    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, 3)) + "\n")
    batches, _, _ = _plan_run_merge(p, 4)
    ranges = sorted(split_range(i)[1] for b in batches for i in b)
    assert len(ranges) == 4 and ranges[0][0] == 0 and ranges[-1][1] == p.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


@pytest.mark.parametrize("tasks,key", [(2, "ip_ua"), (5, "ip_ua"), (3, "ip")])
def test_merge_of_byte_range_tasks_is_exact(tmp_path, tasks, key):
    # Out-of-order lines, malformed lines, visitors and sessions that span every task boundary.
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(4000, 13, shuffle=0.05)) + "\n")
    _, parts, merged = _plan_run_merge(p, tasks, session_key=key)
    whole = run([p], session_key=key)
    ref = analyse([str(p)])
    cols = [c for c in whole.tables["sessions"].column_names if c != "session_id"]
    assert (
        merged.tables["sessions"].select(cols).to_pylist()
        == whole.tables["sessions"].select(cols).to_pylist()
    )
    for k in ("requests", "bytes", "unique_visitors", "unparsed_lines", "sessions", "bounce_rate",
              "median_duration_s", "top_pages", "top_referrers", "top_user_agents", "status_codes",
              "hits_per_hour", "hits_per_day", "files", "per_file"):  # fmt: skip
        assert merged.summary[k] == whole.summary[k], k
    # The byte ranges of one log are one file, however many tasks read it.
    assert merged.summary["files"] == 1
    # A sum of the tasks' counts would overcount: visitors come back in every task.
    assert merged.summary["unique_visitors"] == ref["unique_visitors"]
    assert merged.summary["unique_visitors"] < sum(t.summary["unique_visitors"] for t in parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 1500),
    clients=st.integers(1, 6),
    shuffle=st.sampled_from([0.0, 0.05, 0.3]),
    key=st.sampled_from(["ip_ua", "ip"]),
    timeout_min=st.sampled_from([30, 1, 0.1, 0.5]),
    chunk=st.sampled_from([97, 4096, 8 << 20]),
    cut_at=st.lists(st.floats(0, 1), max_size=9),
    parquet=st.booleans(),
    task_timeout=st.booleans(),
)
def test_vectorized_merge_equals_the_row_by_row_merge(
    seed, n, clients, shuffle, key, timeout_min, chunk, cut_at, parquet, task_timeout
):
    """The Arrow merge against the earlier Python one (tests/logs/reference.py), on the tables of real
    task runs: few clients and steps of 0-2 s (ties of entry and exit times across tasks, sessions of
    every task joined), lines out of order (one key's sessions overlapping across tasks), empty tasks,
    assets-only sessions (null entry/exit), both keys, timeouts that are not whole seconds (0.1 min is
    6.000000000000001 s), tables read back from Parquet as the runner gives them (ms timestamps)."""
    import tempfile

    ips = [f"10.1.0.{i}" for i in range(1, clients + 1)]
    lines = generate(n, seed, shuffle=shuffle, clients=ips, steps=(0, 0, 1, 2, 30, 700))
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "access.log"
        path.write_bytes(data)
        # The tasks' own timeout or another one: the merge must agree with the reference either way.
        tables = cut_runs(
            data, path, [int(c * len(data)) for c in cut_at], key, timeout_min if task_timeout else 30, chunk
        )
        if parquet:
            for i, t in enumerate(tables):
                pq.write_table(t, Path(d) / f"t{i}.parquet")
            tables = [pq.read_table(Path(d) / f"t{i}.parquet") for i in range(len(tables))]
    new = ls.merge_sessions(tables, timeout_min * 60, key != "ip")
    old = merge_sessions(tables, timeout_min * 60, key != "ip")
    assert new.schema == old.schema
    assert new.to_pylist() == old.to_pylist()


def test_merge_tie_rules_on_hand_made_tables():
    """The rules the merge keeps, spelled out: an entry tie keeps the earlier task's page, an exit tie
    takes the later task's, a null time is never chosen, and a joined session whose exits are all null
    keeps its first row's page (engine tables have null pages there; the rule is the old merge's)."""
    from datetime import UTC, datetime

    schema = run([]).tables["sessions"].schema

    def row(start, end, entry, exit_, pages=("e", "x"), ua="a"):
        ts = lambda s: None if s is None else datetime.fromtimestamp(1_700_000_000 + s, UTC)  # noqa: E731
        return {"session_id": 0, "ip": "1.1.1.1", "user_agent": ua, "start": ts(start), "end": ts(end),
                "duration_s": end - start, "requests": 1, "pages": 1, "bytes": 10, "entry_page": pages[0],
                "exit_page": pages[1], "status_2xx": 1, "status_3xx": 0, "status_4xx": 0, "status_5xx": 0,
                "is_bot": False, "entry_time": ts(entry), "exit_time": ts(exit_)}  # fmt: skip

    tasks = [
        [row(0, 100, 0, 100, ("e0", "x0")), row(5000, 5000, None, None, ("n0", "m0"))],
        [row(0, 100, 0, 100, ("e1", "x1")), row(5100, 5200, None, None, ("n1", "m1"), ua="b")],
        [row(50, 100, 50, 100, ("e2", "x2")), row(5100, 5100, None, None, ("n2", "m2"))],
    ]
    tables = [pa.Table.from_pylist(t, schema=schema) for t in tasks]
    for by_ua in (True, False):
        got = ls.merge_sessions(tables, 1800.0, by_ua)
        assert got.to_pylist() == merge_sessions(tables, 1800.0, by_ua).to_pylist()
        first = got.to_pylist()[0]
        assert (first["entry_page"], first["exit_page"], first["requests"]) == ("e0", "x2", 3)
    by_ip = ls.merge_sessions(tables, 1800.0, by_ua=False).to_pylist()
    assert [(r["requests"], r["entry_page"], r["exit_page"], r["duration_s"]) for r in by_ip] == [
        (3, "e0", "x2", 100),
        (3, "n0", "m0", 200),
    ]


def test_merge_of_no_tasks_and_of_empty_tasks():
    empty = run([]).tables["sessions"]
    assert ls.merge_sessions([], 1800.0).num_rows == 0
    for tables in ([empty], [empty, empty]):
        got = ls.merge_sessions(tables, 1800.0)
        assert got.schema == empty.schema and got.num_rows == 0


def test_a_job_planned_into_byte_ranges_runs_through_the_runner(tmp_path, monkeypatch):
    # What the job server does: plan_job -> run_task on each task (any worker) -> merge_job.
    from aerofs_kernel import runner
    from aerofs_kernel.pipelines import log_sessions as ls

    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, 21, shuffle=0.05)) + "\n")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)
    params = {"src": str(p), "dst": str(tmp_path / "report")}
    tasks = runner.plan_job("log-sessions", params, 3)
    assert [i["byte_range"] is not None for t in tasks for i in t["inputs"]] == [True] * 3
    assert sum(t["bytes"] for t in tasks) == p.stat().st_size
    work = tmp_path / "work"
    partials = [runner.run_task("log-sessions", params, t, _engine.Progress(), str(work)) for t in tasks]
    merged = runner.merge_job("log-sessions", params, partials, str(work))
    whole = run([p])
    for k in ("requests", "bytes", "unique_visitors", "sessions", "unparsed_lines", "top_pages"):
        assert merged["summary"][k] == whole.summary[k], k
    assert pq.read_table(tmp_path / "report" / "sessions.parquet").num_rows == whole.summary["sessions"]


def test_dst_writes_what_the_in_memory_run_holds_and_reads_it_lazily(tmp_path):
    from aerofs_kernel.pipelines import atomic
    from aerofs_kernel.result import ParquetTable, Result

    def write_outputs(dst: str, sessions: pa.Table, summary: dict) -> list[str]:
        """The outputs as Python wrote them from a table in memory (a run before the engine wrote the
        file; a job's merge before it streamed)."""
        parquet = atomic.write_table(sessions, str(Path(dst) / "sessions.parquet"))
        return [parquet, *ls.write_reports(dst, summary)]

    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(4000, 31, shuffle=0.05)) + "\n")
    for key in ("ip_ua", "ip"):
        mem = run([p], session_key=key, chunk_size=4096)
        dst = tmp_path / f"out-{key}"
        out = run([p], dst=str(dst), session_key=key, chunk_size=4096)
        assert out.summary == mem.summary
        # Today's files, written from the in-memory table by Python: the same rows, the same bytes
        # of summary.json and report.html.
        today = tmp_path / f"today-{key}"
        write_outputs(str(today), mem.tables["sessions"], mem.summary)
        assert [Path(o).name for o in out.outputs] == ["sessions.parquet", "summary.json", "report.html"]
        assert pq.read_table(dst / "sessions.parquet").equals(pq.read_table(today / "sessions.parquet"))
        for name in ("summary.json", "report.html"):
            assert (dst / name).read_bytes() == (today / name).read_bytes(), name
        assert sorted(x.name for x in dst.iterdir()) == ["report.html", "sessions.parquet", "summary.json"]
        # Not read until used: the display and repr peek at the file (row count, first rows).
        r = Result(pipeline="log-sessions", summary=out.summary, outputs=out.outputs, tables=out.tables)
        assert isinstance(out.tables.peek("sessions"), ParquetTable)
        assert f"sessions: {mem.summary['sessions']} rows" in repr(r)
        assert f"{mem.summary['sessions']:,} rows x 18 columns" in r._repr_html_()
        assert isinstance(out.tables.peek("sessions"), ParquetTable)
        assert r.table.equals(mem.tables["sessions"])  # read on first use, then kept
        assert out.tables.peek("sessions") is r.table
        assert [k for k, _ in out.tables.items()] == ["sessions", "counts"]


def test_a_failed_run_with_dst_leaves_no_sessions_file(tmp_path):
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, 5)) + "\n")
    dst = tmp_path / "out"
    with pytest.raises(OSError):
        run([p, tmp_path / "missing.log"], dst=str(dst), on_error="fail", chunk_size=4096)
    assert not dst.exists() or list(dst.iterdir()) == []


@pytest.mark.integration
def test_remote_dst_is_uploaded_and_its_table_read_from_there(tmp_path, s3_bucket):
    # The runner stages a remote dst locally and removes the staging folder once uploaded: the
    # result's table is then read from the uploaded object.
    import aerofs_kernel as aero
    from aerofs_kernel.result import ParquetTable

    fs, bucket = s3_bucket
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, 9)) + "\n")
    r = aero.log_sessions(str(p), f"s3://{bucket}/report/", show_progress=False)
    assert sorted(r.outputs) == [
        f"s3://{bucket}/report/{n}" for n in ("report.html", "sessions.parquet", "summary.json")
    ]
    assert r.table.equals(run([p]).tables["sessions"])
    assert not [x for x in fs.find(bucket) if "/." in x]  # no temporaries uploaded
    # A remote input: the runner names inputs by their URLs in the result's tables, which must
    # not load the sessions table that stays in its file.
    fs.put(str(p), f"{bucket}/in/access.log")
    r2 = aero.log_sessions(f"s3://{bucket}/in/access.log", str(tmp_path / "local"), show_progress=False)
    assert isinstance(r2.tables.peek("sessions"), ParquetTable)
    assert r2.table.equals(r.table)


def test_the_visitors_table_only_for_a_task(tmp_path):
    """The engine builds the distinct (ip, user agent, day) rows only when asked (a job's task, for the
    merge's union): a run needs their count, and at 5 GB the rows were half the run's peak memory."""
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(500, 5)) + "\n")

    def visitors(opts):
        doc, tables = _engine.log_sessions([str(p)], json.dumps(opts), _engine.Progress())
        return json.loads(doc)["summary"]["unique_visitors"], tables["visitors"]

    n, none = visitors({})
    assert none.num_rows == 0 and none.column_names == ["ip", "user_agent", "day"]
    same, rows = visitors({"visitors_table": True})
    assert same == n == rows.num_rows > 0
    spec = get_pipeline("log-sessions")
    opts = spec.options({"src": "x"})
    assert "visitors" not in spec.run([str(p)], None, opts, _engine.Progress()).tables
    task = _task(spec, [str(p)], opts, tmp_path, 0)
    assert task.tables["visitors"].num_rows == n
