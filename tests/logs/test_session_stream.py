"""A job's merge streamed (aerofs_kernel/pipelines/session_stream.py): the job's files equal the
interactive run's, only the sessions task boundaries can cut are held, the tasks' tables are read
batch by batch."""

from __future__ import annotations

import gzip
import json
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerofs_kernel import _engine, runner
from aerofs_kernel.pipelines import get_pipeline
from aerofs_kernel.pipelines import log_sessions as ls
from aerofs_kernel.pipelines import session_stream as ss
from aerofs_kernel.result import ParquetTable

sys.path.insert(0, str(Path(__file__).parent))
from cut_tasks import cut_runs, file_runs, one_run
from reference import generate, median, merge_sessions

#: Summary keys a job computes in its own way (the rest add up or are per input).
SESSION_KEYS = ("sessions", "bounce_rate", "mean_duration_s", "median_duration_s", "pages_per_session",
                "bot_sessions", "unique_visitors", "requests", "bytes", "unparsed_lines", "top_pages",
                "top_referrers", "top_user_agents", "status_codes", "hits_per_hour", "hits_per_day")  # fmt: skip


@pytest.fixture
def small_batches(monkeypatch):
    """Batches and row groups of a few rows, so windows, refills and row groups are crossed often
    (the tasks' files too, which the engine writes in the runner's row groups)."""
    monkeypatch.setattr(ss, "BATCH_ROWS", 37)
    monkeypatch.setattr(ss, "ROW_GROUP_ROWS", 101)
    monkeypatch.setattr(runner, "TASK_ROW_GROUP_ROWS", 53)


def _interactive(paths, dst, **opts):
    spec = get_pipeline("log-sessions")
    return spec.run([str(p) for p in paths], str(dst), spec.options({"src": "x", **opts}), _engine.Progress())


def _job(src, dst, work, tasks, **opts):
    params = {"src": src, "dst": str(dst), **opts}
    plan = runner.plan_job("log-sessions", params, tasks)
    partials = [runner.run_task("log-sessions", params, t, _engine.Progress(), str(work)) for t in plan]
    return plan, runner.merge_job("log-sessions", params, partials, str(work))


def _same_outputs(job_dst: Path, one_dst: Path, job_summary: dict, one_summary: dict) -> None:
    job_file, one_file = (
        pq.read_table(job_dst / "sessions.parquet"),
        pq.read_table(one_dst / "sessions.parquet"),
    )
    assert job_file.schema == one_file.schema  # types, as the engine writes them
    assert job_file.equals(one_file)  # rows, order, ids
    written = json.loads((job_dst / "summary.json").read_text())
    for k in SESSION_KEYS:
        assert job_summary[k] == one_summary[k], k
        assert written[k] == one_summary[k], k


@pytest.mark.parametrize("key", ["ip_ua", "ip"])
def test_a_job_of_byte_ranges_writes_the_interactive_runs_file(tmp_path, monkeypatch, small_batches, key):
    # Out-of-order lines (some across cuts), sessions across every cut and across midnight (the log
    # starts at 22:00), seven tasks, a small engine chunk.
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(6000, 41, shuffle=0.05, steps=(0, 1, 5, 30, 120, 600))) + "\n")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)
    plan, job = _job(str(p), tmp_path / "job", tmp_path / "work", 7, session_key=key, chunk_size=4096)
    assert len(plan) == 7
    one = _interactive([p], tmp_path / "one", session_key=key, chunk_size=4096)
    _same_outputs(tmp_path / "job", tmp_path / "one", job["summary"], one.summary)
    assert job["summary"]["files"] == 1


def test_a_job_of_overlapping_whole_files_writes_the_interactive_runs_file(tmp_path, small_batches):
    # Two servers' logs of the same hours (every session an edge: correct, not bounded), a rotated
    # .gz and an empty file, given out of order.
    lines = generate(5000, 43, shuffle=0.02)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("\n".join(lines[0:3000:2]) + "\n")
    (logs / "b.log").write_text("\n".join(lines[1:3000:2]) + "\n")
    (logs / "c.log.1.gz").write_bytes(gzip.compress(("\n".join(lines[3000:]) + "\n").encode()))
    (logs / "empty.log").write_text("")
    paths = [logs / n for n in ("c.log.1.gz", "empty.log", "b.log", "a.log")]
    plan, job = _job(str(logs), tmp_path / "job", tmp_path / "work", 4)
    assert len(plan) == 4
    one = _interactive(paths, tmp_path / "one")
    _same_outputs(tmp_path / "job", tmp_path / "one", job["summary"], one.summary)


def test_overlapping_whole_files_are_merged_holding_the_open_sessions_only(
    tmp_path, monkeypatch, small_batches
):
    # Two servers behind a load balancer, each log a task: every session is an edge (the files cover
    # the same hours), yet the merge holds only the sessions open at a point in time (and the joined
    # ones waiting for their turn in the order), not all of them; the job's files are the interactive
    # run's. The visitors change from block to block, as on a site over a day. Every day is seen by
    # both tasks: the unique visitors are counted a few days at a time.
    monkeypatch.setattr(ls, "VISITOR_ROWS", 40)
    lines: list[str] = []
    t = datetime(2024, 3, 9, 22, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    for block in range(16):
        clients = [f"10.2.{block}.{i}" for i in range(1, 7)]
        lines += generate(400, 100 + block, start=t, clients=clients, steps=(1, 5, 30), shuffle=0.0)
        t += timedelta(hours=3)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "web1.log").write_text("\n".join(lines[0::2]) + "\n")
    (logs / "web2.log").write_text("\n".join(lines[1::2]) + "\n")
    params = {"src": str(logs), "dst": str(tmp_path / "job")}
    work = tmp_path / "work"
    plan = runner.plan_job("log-sessions", params, 2)
    assert [len(x["inputs"]) for x in plan] == [1, 1]  # each file a task
    partials = [runner.run_task("log-sessions", params, x, _engine.Progress(), str(work)) for x in plan]
    files = [ParquetTable(lambda p=x["tables"]["sessions"]: p) for x in partials]
    got, _, held = ss.merge(files, 1800.0, ls.SessionJoin(1800.0), None)
    total = sum(pq.read_metadata(f.locate()).num_rows for f in files)
    assert got.equals(ls.merge_sessions([pq.read_table(f.locate()) for f in files], 1800.0))
    assert held.edges > 0.9 * total  # nearly all edges ...
    assert 0 < held.peak < total / 5  # ... but only a few blocks' worth held at once
    job = runner.merge_job("log-sessions", params, partials, str(work))
    one = _interactive([logs / "web1.log", logs / "web2.log"], tmp_path / "one")
    _same_outputs(tmp_path / "job", tmp_path / "one", job["summary"], one.summary)


def test_entry_and_exit_ties_across_overlapping_files_follow_the_input_order(tmp_path):
    # One visitor served by two servers at once: web2's piece starts first (an asset at 10:00), the
    # pages tie at 10:05 (entry) and 10:20 (exit). One pass keeps the first line of a tie as the
    # entry (web1's, the first file) and the last as the exit (web2's), whichever piece starts first.
    def line(t: str, page: str) -> str:
        return f'10.9.9.9 - - [09/Mar/2024:{t} +0000] "GET {page} HTTP/1.1" 200 10 "-" "UA"'

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "web1.log").write_text(line("10:05:00", "/a") + "\n" + line("10:20:00", "/c") + "\n")
    (logs / "web2.log").write_text(
        "\n".join([line("10:00:00", "/style.css"), line("10:05:00", "/b"), line("10:20:00", "/d")]) + "\n"
    )
    _, job = _job(str(logs), tmp_path / "job", tmp_path / "work", 2)
    one = _interactive([logs / "web1.log", logs / "web2.log"], tmp_path / "one")
    rows = pq.read_table(tmp_path / "one" / "sessions.parquet").to_pylist()
    assert [(r["requests"], r["entry_page"], r["exit_page"]) for r in rows] == [(5, "/a", "/d")]
    _same_outputs(tmp_path / "job", tmp_path / "one", job["summary"], one.summary)


@pytest.mark.parametrize("key", ["ip_ua", "ip"])
def test_a_job_over_servers_logs_with_many_same_second_lines_equals_the_interactive_run(
    tmp_path, small_batches, key
):
    # Three servers' logs of the same minutes, given out of name order and growing in size (the base
    # plan packed the largest first, so task order was not input order): two visitors' lines, many
    # in the same second on two or three servers, dealt at random. The interactive run breaks each
    # tie in time by input order: the entry is the first file's line, the exit the last file's, and
    # by IP only, a session's user agent (and is_bot) is its first line's, in input order too.
    lines = generate(3000, 71, malformed=0.0, shuffle=0.0, clients=["10.7.0.1"], steps=(0, 0, 0, 1, 900))
    deal = random.Random(71).choices(range(3), weights=(1, 2, 4), k=len(lines))
    logs = tmp_path / "logs"
    logs.mkdir()
    paths = [logs / n for n in ("web-c.log", "web-a.log", "web-b.log")]
    for server, path in enumerate(paths):
        path.write_text("".join(f"{x}\n" for x, d in zip(lines, deal, strict=True) if d == server))
    sizes = [p.stat().st_size for p in paths]
    assert sizes == sorted(sizes)
    # Ties across files there are: (ip, time) seen on two servers or more.
    seconds = [
        {x.split(" - - [")[0] + x.split("[")[1][:20] for x in p.read_text().splitlines()} for p in paths
    ]
    assert len((seconds[0] & seconds[1]) | (seconds[1] & seconds[2]) | (seconds[0] & seconds[2])) > 200
    plan, job = _job([str(p) for p in paths], tmp_path / "job", tmp_path / "work", 3, session_key=key)
    assert [[runner.Input.from_dict(i).url for i in t["inputs"]] for t in plan] == [[str(p)] for p in paths]
    one = _interactive(paths, tmp_path / "one", session_key=key)
    _same_outputs(tmp_path / "job", tmp_path / "one", job["summary"], one.summary)
    # The same files in another order are another interactive run: the job follows that one.
    again = [paths[2], paths[0], paths[1]]
    _, job = _job([str(p) for p in again], tmp_path / "job2", tmp_path / "work2", 2, session_key=key)
    one = _interactive(again, tmp_path / "one2", session_key=key)
    _same_outputs(tmp_path / "job2", tmp_path / "one2", job["summary"], one.summary)


def test_a_job_with_empty_tasks_and_one_task(tmp_path, monkeypatch, small_batches):
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(300, 47)) + "\n")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)
    one = _interactive([p], tmp_path / "one")
    for tasks in (1, 200):  # 200 ranges of ~130 bytes: many hold no line start
        dst = tmp_path / f"job-{tasks}"
        _, job = _job(str(p), dst, tmp_path / f"work-{tasks}", tasks)
        _same_outputs(dst, tmp_path / "one", job["summary"], one.summary)


def test_the_merge_reads_the_tasks_sessions_batch_by_batch_and_returns_them_lazily(tmp_path, monkeypatch):
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(3000, 53, shuffle=0.05)) + "\n")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)
    params = {"src": str(p), "dst": str(tmp_path / "job")}
    spec = get_pipeline("log-sessions")
    work = tmp_path / "work"
    partials = [
        runner.run_task("log-sessions", params, t, _engine.Progress(), str(work))
        for t in runner.plan_job("log-sessions", params, 3)
    ]
    read: list[str] = []
    whole = ParquetTable.read
    monkeypatch.setattr(ParquetTable, "read", lambda self: read.append(self.locate()) or whole(self))
    runner.merge_job("log-sessions", params, partials, str(work))
    # Only the small per-value counts are read whole; sessions and visitors are streamed.
    assert read and all(r.endswith("-counts.parquet") for r in read)
    # The merge itself: its sessions table stays in the written file until used.
    parts = [runner._task_tables(x["tables"]) for x in partials]
    outs = [ls.RunOutput(summary=x["summary"], tables=t) for x, t in zip(partials, parts, strict=True)]
    merged = spec.merge(outs, str(tmp_path / "again"), spec.options({"src": "x"}))
    assert isinstance(merged.tables.peek("sessions"), ParquetTable)
    assert merged.tables["sessions"].equals(pq.read_table(tmp_path / "job" / "sessions.parquet"))


def test_most_sessions_of_a_long_log_cut_in_tasks_are_interior(tmp_path, monkeypatch, small_batches):
    # What bounds the merge: with byte ranges of a time-ordered log only the sessions within the
    # timeout of a cut are held, and only the pieces (row groups) near a cut are read for them.
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(20000, 59, shuffle=0.01, steps=(0, 1, 5, 30, 120))) + "\n")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)
    spec = get_pipeline("log-sessions")
    batches = spec.plan([(str(p), p.stat().st_size)], {}, 4)
    opts = spec.options({"src": "x"})
    tables = [spec.run(b, None, opts, _engine.Progress()).tables["sessions"] for b in batches]
    reach = ss.reach_s(1800.0)
    pieces = [ss.piece_spans(t) for t in tables]
    spans = [ss.outer(x) for x in pieces]
    total = sum(t.num_rows for t in tables)
    edges = near_pieces = 0
    for i, t in enumerate(tables):
        near = ss.neighbours(spans, i, reach)
        assert len(near) == (1 if i in (0, len(tables) - 1) else 2)  # its time neighbours only
        edges += sum(pa.compute.sum(ss.edge_mask(b, near, reach)).as_py() for b in ss.batches(t))
        near_pieces += sum(ss.meets(x, near, reach) for x in pieces[i])
    assert 0 < edges < total / 10
    assert near_pieces < sum(map(len, pieces)) / 10
    streamed, _, held = ss.merge(tables, 1800.0, ls.SessionJoin(1800.0), None)
    assert held.edges == edges
    assert streamed.equals(ls.merge_sessions(tables, 1800.0))


def test_neighbours_and_edges_on_hand_made_spans():
    spans = [(0, 100), (90, 300), None, (1000, 1100), (5000, 6000)]
    assert ss.neighbours(spans, 0, 10) == [(90, 300)]
    assert ss.neighbours(spans, 1, 10) == [(0, 100)]
    assert ss.neighbours(spans, 3, 700) == [(90, 300)]
    assert ss.neighbours(spans, 3, 10) == []
    assert ss.neighbours(spans, 2, 10) == []
    # Overlapping neighbours are one interval.
    assert ss.neighbours([(0, 50), (10, 20), (15, 40), (100, 120)], 0, 60) == [(10, 40), (100, 120)]
    t0 = datetime(1970, 1, 1, tzinfo=UTC)  # spans are in the time unit since the epoch
    ts = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    batch = pa.RecordBatch.from_pydict(
        {"start": [ts(0), ts(500), ts(880)], "end": [ts(10), ts(600), ts(890)]},
        schema=pa.schema([("start", pa.timestamp("s", "UTC")), ("end", pa.timestamp("s", "UTC"))]),
    )
    # A neighbour at 900..950 and a reach of 100 s: 880..890 comes within it, 500..600 falls short.
    assert ss.edge_mask(batch, [(900, 950)], 100).to_pylist() == [False, False, True]
    assert ss.reach_s(1800.0) == 1802
    assert ss.reach_s(6.000000000000001) == 9
    assert ss.meets((880, 890), [(900, 950)], 10) and not ss.meets((500, 600), [(900, 950)], 100)
    assert not ss.meets(None, [(900, 950)], 100)


def test_median_from_duration_counts():
    f = ss.Figures()
    for values in ([5, 1], [3], [], [1, 9, 9]):
        f.add(pa.table({"pages": pa.array([1] * len(values), pa.uint64()), "duration_s": pa.array(values, pa.int64()),
                        "is_bot": [False] * len(values)}))  # fmt: skip
    assert f.n == 6 and f.median() == (3 + 5) / 2
    assert ss.Figures().summary() == {"sessions": 0}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 1200),
    clients=st.integers(1, 6),
    shuffle=st.sampled_from([0.0, 0.05, 0.3]),
    key=st.sampled_from(["ip_ua", "ip"]),
    timeout_min=st.sampled_from([30, 1, 0.1]),
    cut_at=st.lists(st.floats(0, 1), max_size=9),
    servers=st.sampled_from([0, 2, 3]),
    batch=st.sampled_from([1, 5, 64]),
    same_second=st.booleans(),
)
def test_streamed_merge_equals_the_whole_merge(
    seed, n, clients, shuffle, key, timeout_min, cut_at, servers, batch, same_second
):
    """Random byte cuts (empty tasks, lines out of order, ties across tasks, timeouts that are not
    whole seconds), or (``servers``) the lines dealt at random to whole files of the same hours, one
    task each (nearly every session an edge, one visitor's pieces overlapping in time, many lines of
    one visitor in the same second on several servers: entry and exit ties): tables from Parquet as
    a job gives them, the streamed merge (collected, and written) equals :func:`merge_sessions` over
    every session, row for row, ids and types, which equals the interactive run over the same lines
    and the row-by-row reference merge."""
    ips = [f"10.1.0.{i}" for i in range(1, clients + 1)]
    # same_second: most lines in the second of the line before (ties in time of one visitor's lines).
    steps = (0, 0, 0, 1, 900) if same_second else (0, 0, 1, 2, 30, 700)
    lines = generate(n, seed, shuffle=shuffle, clients=ips, steps=steps)
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    old = ss.BATCH_ROWS, ss.ROW_GROUP_ROWS
    ss.BATCH_ROWS, ss.ROW_GROUP_ROWS = batch, 3 * batch
    try:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "access.log"
            path.write_bytes(data)
            if servers:
                deal = random.Random(seed).choices(range(servers), k=len(lines))
                tables = file_runs(lines, Path(d), deal, servers, key, timeout_min)
            else:
                tables = cut_runs(data, path, [int(c * len(data)) for c in cut_at], key, timeout_min)
            files = []
            for i, t in enumerate(tables):
                pq.write_table(t, Path(d) / f"t{i}.parquet", row_group_size=2 * batch)
                files.append(ParquetTable(lambda i=i: str(Path(d) / f"t{i}.parquet")))
            whole = ls.merge_sessions(
                [pq.read_table(f.locate()) for f in files], timeout_min * 60, key != "ip"
            )
            # ... which is the interactive run's (ties in time: the files in task order, as the plan
            # keeps them; one file's lines in byte order), and the row-by-row reference's.
            one = one_run(
                [Path(d) / f"server-{i}.log" for i in range(servers)] if servers else [path], key, timeout_min
            )
            assert whole.to_pylist() == one.to_pylist()
            ref = merge_sessions([pq.read_table(f.locate()) for f in files], timeout_min * 60, key != "ip")
            assert whole.to_pylist() == ref.to_pylist()

            join = ls.SessionJoin(timeout_min * 60, key != "ip")
            got, figures, _ = ss.merge(files, timeout_min * 60, join, None)
            assert got.schema == whole.schema
            assert got.to_pylist() == whole.to_pylist()
            _, _, _ = ss.merge(files, timeout_min * 60, join, str(Path(d) / "out.parquet"))
            assert pq.read_table(Path(d) / "out.parquet").equals(pq.read_table(_written(whole, d)))
            assert figures.median() == median(whole.column("duration_s").to_pylist())
            assert figures.n == whole.num_rows
    finally:
        ss.BATCH_ROWS, ss.ROW_GROUP_ROWS = old


def _written(table: pa.Table, d: str) -> str:
    path = str(Path(d) / "whole.parquet")
    pq.write_table(table, path, compression="zstd")
    return path


@pytest.mark.integration
def test_a_job_from_and_to_s3_writes_the_interactive_runs_file(
    tmp_path, monkeypatch, s3_bucket, small_batches
):
    # Remote byte ranges in, a remote dst out: the merge writes in the runner's local staging folder,
    # which is uploaded; the uploaded file equals the interactive run's.
    fs, bucket = s3_bucket
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(4000, 61, shuffle=0.05)) + "\n")
    fs.put(str(p), f"{bucket}/in/access.log")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)
    read: list[str] = []
    whole = ParquetTable.read
    monkeypatch.setattr(ParquetTable, "read", lambda self: read.append(self.locate()) or whole(self))
    plan, job = _job(f"s3://{bucket}/in/access.log", f"s3://{bucket}/out/", tmp_path / "work", 5)
    assert len(plan) == 5
    # The tasks' sessions files (written by the engine) are never read whole: not by the runner
    # renaming the streams' paths back to the URLs, not by the merge.
    assert read and not [r for r in read if r.endswith("-sessions.parquet")]
    assert sorted(job["outputs"]) == [
        f"s3://{bucket}/out/{n}" for n in ("report.html", "sessions.parquet", "summary.json")
    ]
    got = tmp_path / "got"
    got.mkdir()
    for n in ("sessions.parquet", "summary.json"):
        fs.get(f"{bucket}/out/{n}", str(got / n))
    assert not [x for x in fs.find(bucket) if "/." in x]  # no temporaries uploaded
    one = _interactive([p], tmp_path / "one")
    _same_outputs(got, tmp_path / "one", job["summary"], one.summary)


def test_tables_in_memory_with_columns_chunked_apart(tmp_path, monkeypatch, small_batches):
    # A merge called with tables in memory (spec.merge on runs' outputs): the pieces the spans are
    # taken of are the batches the rows are read in, however each column is chunked.
    p = tmp_path / "access.log"
    p.write_text("\n".join(generate(2000, 67, shuffle=0.05)) + "\n")
    monkeypatch.setattr(ls, "SPLIT_BYTES", 1)
    spec = get_pipeline("log-sessions")
    opts = spec.options({"src": "x"})
    plan = spec.plan([(str(p), p.stat().st_size)], {}, 3)
    tables = [spec.run(b, None, opts, _engine.Progress()).tables["sessions"] for b in plan]

    def rechunked(t: pa.Table) -> pa.Table:
        cols = [c.combine_chunks() for c in t.columns]
        n = t.num_rows
        cols[t.schema.get_field_index("ip")] = pa.chunked_array(
            [cols[t.schema.get_field_index("ip")].slice(a, 23) for a in range(0, n, 23)]
        )
        return pa.Table.from_arrays(cols, schema=t.schema)

    got, _, held = ss.merge([rechunked(t) for t in tables], 1800.0, ls.SessionJoin(1800.0), None)
    assert held.edges
    assert got.equals(ls.merge_sessions(tables, 1800.0))
