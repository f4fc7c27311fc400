"""word-count against a plain Python reference (collections.Counter)."""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline
from aerofs_kernel.pipelines.base import RANGE_MARK, RunOutput, split_range

SPACE = " \t\n\r\x0b\x0c"


def classic_ref(text: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for w in re.split(f"[{SPACE}]+", text):
        if w:
            out["".join(c.lower() if "A" <= c <= "Z" else c for c in w)] += 1
    return out


def unicode_ref(text: str) -> Counter[str]:
    out: Counter[str] = Counter()
    word: list[str] = []
    for c in text + " ":
        if c.isalnum():
            word.append(c.lower())
        elif word:
            out["".join(word)] += 1
            word = []
    return out


def as_counter(table) -> Counter[str]:
    return Counter(
        dict(zip(table.column("word").to_pylist(), table.column("count").to_pylist(), strict=True))
    )


def run(paths, **opts) -> RunOutput:
    spec = get_pipeline("word-count")
    dst = opts.pop("dst", None)
    return spec.run(list(paths), dst, spec.options({"src": "x", **opts}), _engine.Progress())


words = st.text(alphabet=st.sampled_from(list("abcXYZé,.'-ßÅ日本1")), min_size=1, max_size=8)
seps = st.text(alphabet=st.sampled_from(list(SPACE)), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(words, seps), max_size=80), st.integers(1, 50), st.booleans())
def test_equals_reference_with_tiny_chunks(tmp_path_factory, pairs, chunk, uni):
    text = "".join(w + s for w, s in pairs)
    p = tmp_path_factory.mktemp("wc") / "t.txt"
    p.write_text(text, encoding="utf-8")
    out = run([str(p)], chunk_size=chunk, unicode=uni)
    ref = unicode_ref(text) if uni else classic_ref(text)
    assert as_counter(out.tables["table"]) == ref
    assert out.summary["total_words"] == sum(ref.values())
    assert out.summary["distinct_words"] == len(ref)


def _job(paths: list[Path], tasks: int, **opts) -> tuple[list[list[str]], RunOutput]:
    """A job's plan (every file bigger than a byte split into ranges), its tasks run, their merge."""
    import aerofs_kernel.pipelines.word_count as wc

    spec = get_pipeline("word-count")
    old = wc.SPLIT_BYTES
    wc.SPLIT_BYTES = 1
    try:
        batches = spec.plan([(str(p), os.path.getsize(p)) for p in paths], {}, tasks)
    finally:
        wc.SPLIT_BYTES = old
    options = spec.options({"src": "x", **opts})
    task_options = {**options, **spec.job_options([str(p) for p in paths], options, _engine.Progress())}
    parts = [spec.run(b, None, task_options, _engine.Progress()) for b in batches]
    return batches, spec.merge(parts, None, options)


def _same_result(job: RunOutput, one: RunOutput) -> None:
    assert job.tables["table"].to_pylist() == one.tables["table"].to_pylist()
    for key in ("total_words", "distinct_words", "bytes", "files", "per_file", "errors"):
        assert job.summary[key] == one.summary[key], key
    where = [(e["path"], e["kind"], e["line"], e["offset"]) for e in job.errors]
    assert where == [(e["path"], e["kind"], e["line"], e["offset"]) for e in one.errors]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(words, seps), min_size=1, max_size=60),
    st.integers(1, 5),
    st.one_of(st.none(), st.floats(0, 1)),
)
def test_plan_byte_ranges_then_merge_equals_one_pass(tmp_path_factory, pairs, tasks, bad_at):
    """A job over byte ranges equals one run, a bad byte anywhere in the big file included: the file
    is left out whole and reported once, at its first bad byte (a single run validates a file before
    counting it), while the other input is counted."""
    text = "".join(w + s for w, s in pairs).encode()
    if bad_at is not None:
        at = min(int(bad_at * len(text)), len(text) - 1)
        text = text[:at] + b"\xff" + text[at:]
    d = tmp_path_factory.mktemp("wc")
    p, other = d / "big.txt", d / "other.txt"
    p.write_bytes(text)
    other.write_text("the other file the end\n")
    batches, merged = _job([p, other], tasks, top=3)
    assert len(batches) <= tasks
    for b in batches:  # a task holds whole files, or ranges of one file only
        ranged = {split_range(i)[0] for i in b if split_range(i)[1] is not None}
        assert not ranged or {split_range(i)[0] for i in b} == ranged
    if tasks > 2 and len(text) > 1:
        assert any(RANGE_MARK in i for b in batches for i in b)
    whole = run([str(p), str(other)], top=3)
    _same_result(merged, whole)
    assert len(whole.errors) == (bad_at is not None)


def test_a_bad_range_leaves_its_whole_file_out_of_a_job_as_of_one_run(tmp_path):
    """Bad UTF-8 in the third of four ranges: the job reports the file once, at its first bad byte
    with its line, and counts none of its good ranges, as the interactive run does."""
    lines = [f"line {i} of the big file\n".encode() for i in range(400)]
    body = b"".join(lines)
    at = len(body) * 5 // 8
    body = body[:at] + b"\xfe" + body[at:]
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_bytes(body)
    small.write_text("small words here\n")
    batches, job = _job([big, small], 5)
    assert sum(RANGE_MARK in i for b in batches for i in b) == 4
    one = run([str(big), str(small)])
    _same_result(job, one)
    assert [(e["path"], e["line"], e["offset"]) for e in job.errors] == [
        (str(big), body[:at].count(b"\n") + 1, at)
    ]
    assert job.summary["total_words"] == 3 and job.summary["per_file"] == {str(small): 3}


def test_order_options_outputs_and_errors(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("The the THE cat cat dog a an I\n")
    gz = tmp_path / "b.txt.gz"
    gz.write_bytes(gzip.compress(b"dog dog zebra"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff oops")
    dst = tmp_path / "out"
    out = run([str(a), str(gz), str(bad)], dst=str(dst), stop_words=["The"], min_length=2, top=3)
    assert out.tables["table"].to_pylist() == [
        {"word": "dog", "count": 3},
        {"word": "cat", "count": 2},
        {"word": "an", "count": 1},
    ]
    assert out.summary["total_words"] == 12
    assert out.summary["per_file"] == {str(a): 9, str(gz): 3}
    assert len(out.errors) == 1 and out.errors[0]["path"] == str(bad) and out.errors[0]["line"] == 2
    assert out.outputs == [str(dst / "word_count.parquet")]
    assert pq.read_table(out.outputs[0]).to_pylist() == out.tables["table"].to_pylist()
    csv = run([str(a)], dst=str(tmp_path / "t.csv"))
    assert Path(csv.outputs[0]).read_text().splitlines()[:2] == ["word,count", "the,3"]
    assert not [f for f in os.listdir(tmp_path) if "tmp" in f]


def test_unknown_option_is_an_options_error(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(_engine.OptionsError, match="bogus"):
        _engine.word_count([str(tmp_path / "a.txt")], '{"bogus": 1}', _engine.Progress())


def test_cancel_stops_the_run(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("word " * 200_000)
    prog = _engine.Progress()
    prog.cancel()
    with pytest.raises(_engine.Cancelled):
        _engine.word_count([str(p)], '{"chunk_size": 4096}', prog)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(words, seps), max_size=120),
    st.integers(1, 30),
    st.integers(0, 3),
    st.one_of(st.none(), st.integers(1, 12)),
    st.lists(words, max_size=3),
)
def test_top_stop_words_and_min_length_order_like_python(tmp_path_factory, pairs, chunk, min_len, top, stop):
    """The merged table's order (count descending, then word by its UTF-8 bytes) and its selections,
    on two threads with tiny chunks: many per-thread tables merged by hash partition."""
    text = "".join(w + s for w, s in pairs)
    p = tmp_path_factory.mktemp("wc") / "t.txt"
    p.write_text(text, encoding="utf-8")
    out = run([str(p)], chunk_size=chunk, min_length=min_len, top=top, stop_words=stop, threads=2)
    ref = classic_ref(text)
    stops = {"".join(c.lower() if "A" <= c <= "Z" else c for c in w) for w in stop}
    rows = sorted(
        ((w, c) for w, c in ref.items() if len(w) >= min_len and w not in stops),
        key=lambda r: (-r[1], r[0].encode()),
    )
    t = out.tables["table"]
    assert list(zip(t.column("word").to_pylist(), t.column("count").to_pylist(), strict=True)) == rows[:top]
    assert out.summary["total_words"] == sum(ref.values())
    assert out.summary["distinct_words"] == len(ref)


@pytest.mark.parametrize("threads", [1, 2])
def test_progress_of_a_gz_input_never_passes_one_and_ends_at_one(tmp_path, threads):
    """Totals are on-disk sizes; the .gz decompresses to ~100x its size, and a bad input is skipped:
    the fraction polled during the run stays within [0, 1] and is exactly 1.0 at the end."""
    text = "".join(f"word{i % 5000} the and of\n" for i in range(300_000)).encode()
    gz = tmp_path / "a.txt.gz"
    gz.write_bytes(gzip.compress(text, compresslevel=9))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine words \xff")
    plain = tmp_path / "b.txt"
    plain.write_bytes(text[:100_000])
    prog = _engine.Progress()
    fractions: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            s = prog.snapshot()
            if s["bytes_total"]:
                fractions.append(s["bytes_done"] / s["bytes_total"])

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        res, _ = _engine.word_count(
            [str(gz), str(bad), str(plain)], json.dumps({"chunk_size": 16384, "threads": threads}), prog
        )
    finally:
        done.set()
        poller.join()
    s = prog.snapshot()
    fractions.append(s["bytes_done"] / s["bytes_total"])
    assert s["bytes_total"] == sum(os.path.getsize(p) for p in (gz, bad, plain))
    assert s["bytes_done"] == s["bytes_total"]
    assert len(json.loads(res)["errors"]) == 1
    assert max(fractions) <= 1.0
    assert fractions == sorted(fractions)  # never goes back
