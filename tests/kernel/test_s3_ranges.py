"""One big remote object fans out into byte-range tasks like a local file (loopback S3, moto's server):
the job gives exactly the local job's result (tables, summaries, errors and their line numbers),
words and characters that cross a range's boundary included, and no task but the first reads the
object's head."""

from __future__ import annotations

import importlib
import random
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine, runner, sources

pytestmark = pytest.mark.integration

WORDS = ["alpha", "Beta", "gamma,", "délta", "日本語", "zeta.", "ETA", "naïve", "x", "Straße"]


class _Fetches:
    """Every ranged GET the tasks make: (object offset of its first byte, of its end)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, int]] = []
        orig = sources.StreamSet.fetch
        outer = self

        def fetch(self: sources.StreamSet, stream: sources.RemoteStream, start: int, end: int) -> bytes:
            base = getattr(stream, "base", 0)  # (a whole object before range views)
            outer.calls.append((base + start, base + end))
            return orig(self, stream, start, end)

        monkeypatch.setattr(sources.StreamSet, "fetch", fetch)

    def clear(self) -> None:
        self.calls.clear()


def _text(step: int, specials: list[tuple[str, int]], seed: int = 7) -> bytes:
    """A text of exactly ``step * (len(specials) + 1)`` bytes where the k-th cut ``(k + 1) * step``
    falls ``specials[k][1]`` bytes into the word ``specials[k][0]`` (0: the word starts at the cut)."""
    rnd = random.Random(seed)
    buf = bytearray()

    def fill(to: int) -> None:
        while True:
            w = rnd.choice(WORDS).encode() + rnd.choice([b" ", b"\n", b"\t", b"  ", b" \n"])
            if len(buf) + len(w) >= to:
                break
            buf.extend(w)
        buf.extend(b" " * (to - len(buf)))

    for k, (word, into) in enumerate(specials):
        fill((k + 1) * step - into)
        buf.extend(word.encode() + b"\n")
    fill(step * (len(specials) + 1))
    return bytes(buf)


def _job(
    pipeline: str, src: str, tasks_n: int, workdir: Path, dst: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    params = {"src": src, "dst": dst, "chunk_size": 64}
    tasks = runner.plan_job(pipeline, params, tasks_n)
    partials = [runner.run_task(pipeline, params, t, _engine.Progress(), str(workdir)) for t in tasks]
    return tasks, runner.merge_job(pipeline, params, partials, str(workdir))


def _split(monkeypatch: pytest.MonkeyPatch, pipeline: str, size: int) -> None:
    mod = importlib.import_module(f"aerofs_kernel.pipelines.{pipeline.replace('-', '_')}")
    monkeypatch.setattr(mod, "SPLIT_BYTES", size)


def _ranges(tasks: list[dict[str, Any]]) -> list[list[int]]:
    return sorted(i["byte_range"] for t in tasks for i in t["inputs"])


def _no_head_reads(fetches: _Fetches, start: int) -> None:
    """A task over a range starting at ``start`` read nothing before ``start - 1``."""
    assert fetches.calls, "the task fetched nothing"
    assert min(s for s, _ in fetches.calls) >= start - 1, (start, fetches.calls)


def _errors(merged: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((e["kind"], e["message"], e.get("line"), e.get("offset")) for e in merged["errors"])


def test_word_count_of_a_remote_text_in_ranges_equals_the_local_job(
    s3_bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, bucket = s3_bucket
    step = 3000
    specials = [
        ("ab日本語cd", 6),  # the cut splits 本 (3 bytes) in two
        ("Straddling-Word_across-the-cut", 10),  # a long ASCII word across the cut
        ("éclair", 0),  # a word starting exactly at the cut (the byte before is whitespace)
        ("日本", 3),  # the cut between two multi-byte characters of one word
    ]
    body = _text(step, specials)
    assert len(body) == 5 * step
    local = tmp_path / "big.txt"
    local.write_bytes(body)
    fs.pipe(f"{bucket}/in/big.txt", body)
    _split(monkeypatch, "word-count", step)

    local_tasks, local_job = _job("word-count", str(local), 5, tmp_path / "wl", str(tmp_path / "l.parquet"))
    fetches = _Fetches(monkeypatch)
    url = f"s3://{bucket}/in/big.txt"
    tasks, remote_job = _job("word-count", url, 5, tmp_path / "wr", str(tmp_path / "r.parquet"))
    # Five tasks, each over one range, like the local file's.
    assert len(tasks) == 5
    assert _ranges(tasks) == _ranges(local_tasks) == [[k * step, (k + 1) * step] for k in range(5)]

    one = runner.run_pipeline("word-count", {"src": str(local)})
    table = one.tables["table"]
    assert (
        remote_job["summary"]["total_words"]
        == one.summary["total_words"]
        == local_job["summary"]["total_words"]
    )
    for key in ("distinct_words", "rows", "bytes", "files", "errors"):
        assert remote_job["summary"][key] == local_job["summary"][key] == one.summary[key], key
    assert remote_job["summary"]["per_file"] == {url: one.summary["total_words"]}
    assert remote_job["errors"] == []
    # The table itself: the words crossing the cuts are whole, counted once.
    remote_table = pq.read_table(tmp_path / "r.parquet")
    assert remote_table.equals(pq.read_table(tmp_path / "l.parquet"))
    assert remote_table.equals(table)
    counts = dict(zip(table.column("word").to_pylist(), table.column("count").to_pylist(), strict=True))
    for word in ("ab日本語cd", "straddling-word_across-the-cut", "éclair", "日本"):
        assert counts[word] >= 1, word

    # Each later task streams from just before its range, never from the object's start.
    for task in tasks[1:]:
        fetches.clear()
        runner.run_task(
            "word-count", {"src": url, "chunk_size": 64}, task, _engine.Progress(), str(tmp_path / "w2")
        )
        _no_head_reads(fetches, task["inputs"][0]["byte_range"][0])


def test_word_count_errors_in_remote_ranges_name_the_objects_line_and_byte(
    s3_bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad UTF-8 in the second and fourth ranges: the job reports the object once, as the interactive
    run does, at its first bad byte with the line and byte of the whole object, as for the local file,
    although no task read the object before its range; none of its ranges is counted."""
    fs, bucket = s3_bucket
    step = 2000
    body = bytearray(_text(step, [("first", 3), ("second", 0), ("third", 2)], seed=3))
    bad = [step + 500, 3 * step + 700]
    for at in bad:
        body[at] = 0xFF
    body = bytes(body)
    local = tmp_path / "bad.txt"
    local.write_bytes(body)
    fs.pipe(f"{bucket}/in/bad.txt", body)
    _split(monkeypatch, "word-count", step)
    _, local_job = _job("word-count", str(local), 4, tmp_path / "wl")
    tasks, remote_job = _job("word-count", f"s3://{bucket}/in/bad.txt", 4, tmp_path / "wr")
    assert len(tasks) == 4
    want = [("input", "not valid UTF-8", body[:at].count(b"\n") + 1, at) for at in bad[:1]]
    assert _errors(local_job) == want
    assert _errors(remote_job) == want
    assert remote_job["summary"]["total_words"] == 0 and remote_job["summary"]["per_file"] == {}
    assert {e["path"] for e in remote_job["errors"]} == {f"s3://{bucket}/in/bad.txt"}
    assert all("_range_start" not in e for e in remote_job["errors"])
    for key in ("total_words", "distinct_words", "bytes"):
        assert remote_job["summary"][key] == local_job["summary"][key], key
    # on_error="fail": the task stops with an error naming the object and its byte (no merge
    # follows to number the line in the object: it is given within the range).
    params = {"src": f"s3://{bucket}/in/bad.txt", "on_error": "fail"}
    with pytest.raises(_engine.InputError) as info:
        runner.run_task("word-count", params, tasks[3], _engine.Progress(), str(tmp_path / "wf"))
    assert info.value.path == params["src"] and info.value.offset == bad[1]
    assert f"(byte {bad[1]})" in str(info.value) and "not valid UTF-8" in str(info.value)
    assert str(info.value).startswith(params["src"])


def _log(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    t, out = 1_700_000_000, []
    for _ in range(n):
        t += rnd.choice([1, 30, 900])
        ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
        out.append(
            f'10.0.0.{rnd.randrange(1, 9)} - - [{ts}] "GET /p{rnd.randrange(9)} HTTP/1.1" 200 {rnd.randrange(99, 999)} '
            f'"-" "agent/{rnd.randrange(3)}"'
        )
    return out


def test_log_sessions_samples_in_remote_ranges_have_the_objects_line_numbers(
    s3_bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, bucket = s3_bucket
    lines = _log(2000, 11)
    size = len("\n".join(lines)) + 1
    # Malformed lines in the second and fourth quarters (and one right at the start).
    bad_lines = [1, 700, 1600]
    for n in bad_lines:
        lines[n - 1] = f"malformed line number {n}"
    body = ("\n".join(lines) + "\n").encode()
    local = tmp_path / "access.log"
    local.write_bytes(body)
    fs.pipe(f"{bucket}/in/access.log", body)
    _split(monkeypatch, "log-sessions", size // 4)
    local_tasks, local_job = _job("log-sessions", str(local), 4, tmp_path / "wl")
    fetches = _Fetches(monkeypatch)
    url = f"s3://{bucket}/in/access.log"
    tasks, remote_job = _job("log-sessions", url, 4, tmp_path / "wr")
    assert len(tasks) == 4 and _ranges(tasks) == _ranges(local_tasks)

    def samples(job: dict[str, Any]) -> list[tuple[int, str]]:
        return sorted((s["line"], s["text"]) for s in job["summary"]["unparsed_samples"])

    assert samples(local_job) == [(n, f"malformed line number {n}") for n in bad_lines]
    assert samples(remote_job) == samples(local_job)
    assert all(s["file"] == url for s in remote_job["summary"]["unparsed_samples"])
    for key in ("requests", "sessions", "unique_visitors", "unparsed_lines", "lines"):
        assert remote_job["summary"][key] == local_job["summary"][key], key
    # The tasks of later ranges with a malformed line read nothing of the object before their range
    # (the line numbers were counted before this change by reading the object from byte 0).
    for task in tasks[1:]:
        fetches.clear()
        runner.run_task(
            "log-sessions", {"src": url, "chunk_size": 64}, task, _engine.Progress(), str(tmp_path / "w2")
        )
        _no_head_reads(fetches, task["inputs"][0]["byte_range"][0])
