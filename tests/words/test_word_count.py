"""word-count against a plain Python reference (collections.Counter)."""

from __future__ import annotations

import gzip
import os
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline
from aerofs_kernel.pipelines.base import RANGE_MARK, RunOutput

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


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(words, seps), min_size=1, max_size=60), st.integers(1, 5))
def test_plan_byte_ranges_then_merge_equals_one_pass(tmp_path_factory, pairs, tasks):
    import aerofs_kernel.pipelines.word_count as wc

    text = "".join(w + s for w, s in pairs)
    p = tmp_path_factory.mktemp("wc") / "big.txt"
    p.write_text(text, encoding="utf-8")
    size = os.path.getsize(p)
    spec = get_pipeline("word-count")
    old = wc.SPLIT_BYTES
    wc.SPLIT_BYTES = 1
    try:
        batches = spec.plan([(str(p), size)], {}, tasks)
    finally:
        wc.SPLIT_BYTES = old
    if tasks > 1 and size > 1:
        assert any(RANGE_MARK in i for b in batches for i in b)
    opts = spec.options({"src": "x", "top": 3})
    parts = [spec.run(b, None, opts, _engine.Progress()) for b in batches]
    merged = spec.merge(parts, None, opts)
    whole = run([str(p)], top=3)
    assert merged.tables["table"].to_pylist() == whole.tables["table"].to_pylist()
    assert merged.summary["total_words"] == whole.summary["total_words"]


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
