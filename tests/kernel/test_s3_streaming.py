"""Remote inputs stream into the engine (loopback S3, moto's server): the same results as local files,
compressed inputs included; byte ranges; bounded memory; no local copy; per-input failures; no
credentials in errors or logs."""

from __future__ import annotations

import gzip
import importlib
import io
import json
import logging
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine, runner, sources

pytestmark = pytest.mark.integration


# -- inputs ----------------------------------------------------------------------------------------


def _log_lines(n: int, seed: int) -> list[str]:
    """Combined-format access log lines from a handful of visitors, one second to an hour apart."""
    rnd = random.Random(seed)
    ips = [f"10.0.0.{i}" for i in range(1, 12)]
    uas = ["Mozilla/5.0 (X11)", "curl/8.0", "Mozilla/5.0 (Mac)"]
    lines, t = [], 1_700_000_000
    for _ in range(n):
        t += rnd.choice([1, 20, 300, 2400])
        ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
        lines.append(
            f'{rnd.choice(ips)} - - [{ts}] "GET /p{rnd.randrange(20)} HTTP/1.1" 200 {rnd.randrange(99, 9999)} '
            f'"-" "{rnd.choice(uas)}"'
        )
    return lines


def _text(n: int, seed: int) -> str:
    rnd = random.Random(seed)
    words = ["alpha", "beta", "Gamma", "delta", "épsilon", "zeta", "eta", "theta", "iota", "kappa"]
    return "\n".join(" ".join(rnd.choice(words) for _ in range(12)) for _ in range(n)) + "\n"


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    """One folder with inputs of every pipeline, plain and compressed, in a tree."""
    piexif = pytest.importorskip("piexif")
    from PIL import Image

    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text(
        "id,name,score\n" + "".join(f"{i},n{i % 7},{i * 0.25}\n" for i in range(5000))
    )
    (root / "sub" / "b.csv.gz").write_bytes(
        gzip.compress(b"id,name,score\n" + b"".join(b"%d,m%d,%d.5\n" % (i, i % 3, i) for i in range(3000)))
    )
    (root / "access.log").write_text("\n".join(_log_lines(4000, 1)) + "\n")
    (root / "sub" / "older.log.gz").write_bytes(
        gzip.compress(("\n".join(_log_lines(3000, 2)) + "\n").encode())
    )
    (root / "t1.txt").write_text(_text(3000, 3))
    (root / "sub" / "t2.txt.gz").write_bytes(gzip.compress(_text(2000, 4).encode()))
    for i, make in enumerate([b"Fuji", b"Canon"]):
        Image.new("RGB", (16, 16), (i * 80, 10, 10)).save(
            root / "sub" / f"p{i}.jpg", exif=piexif.dump({"0th": {piexif.ImageIFD.Make: make}})
        )
    return root


@pytest.fixture
def remote_tree(local_tree: Path, s3_bucket: tuple[Any, str]) -> str:
    fs, bucket = s3_bucket
    fs.put(str(local_tree) + "/", f"{bucket}/tree/", recursive=True)
    return f"s3://{bucket}/tree/"


class _Recorder:
    """Patches runner.StreamSet to keep every StreamSet a run creates (their fetch statistics)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sets: list[sources.StreamSet] = []
        outer = self

        class Recording(sources.StreamSet):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, **kw)
                outer.sets.append(self)

        monkeypatch.setattr(runner, "StreamSet", Recording)

    def stat(self, key: str) -> int:
        return sum(s.stats[key] for s in self.sets)


def _sorted(table: pa.Table, drop: tuple[str, ...] = ()) -> pa.Table:
    table = table.drop_columns([c for c in drop if c in table.column_names])
    return table.sort_by(
        [(c, "ascending") for c in table.column_names if not pa.types.is_nested(table.schema.field(c).type)]
    )


# -- every pipeline, remote == local ----------------------------------------------------------------


def test_every_pipeline_on_s3_gives_the_local_result(
    local_tree: Path, remote_tree: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = _Recorder(monkeypatch)
    # csv-to-parquet: the same files, mirroring the same tree, with the same rows.
    here = runner.run_pipeline("csv-to-parquet", {"src": str(local_tree), "dst": str(tmp_path / "l")})
    there = runner.run_pipeline("csv-to-parquet", {"src": remote_tree, "dst": str(tmp_path / "r")})
    rel = sorted(Path(p).relative_to(tmp_path / "l").as_posix() for p in here.outputs)
    assert {"a.parquet", "sub/b.parquet"} <= set(rel)
    assert sorted(Path(p).relative_to(tmp_path / "r").as_posix() for p in there.outputs) == rel
    for r in rel:
        assert pq.read_table(tmp_path / "r" / r).equals(pq.read_table(tmp_path / "l" / r))
    assert {k: there.summary[k] for k in ("files", "rows", "bytes_in")} == {
        k: here.summary[k] for k in ("files", "rows", "bytes_in")
    }
    # word-count (a .gz among them): the same counts.
    here = runner.run_pipeline("word-count", {"src": str(local_tree)})
    there = runner.run_pipeline("word-count", {"src": remote_tree})
    assert _sorted(there.table).equals(_sorted(here.table))
    assert there.summary["total_words"] == here.summary["total_words"] > 0
    # log-sessions (a .gz among them): the same sessions and summary.
    here = runner.run_pipeline("log-sessions", {"src": str(local_tree)})
    there = runner.run_pipeline("log-sessions", {"src": remote_tree})
    for name in here.tables:
        assert _sorted(there.tables[name], drop=("path",)).equals(
            _sorted(here.tables[name], drop=("path",))
        ), name
    for k in ("requests", "sessions", "unique_visitors", "bytes", "unparsed_lines"):
        assert there.summary[k] == here.summary[k], k
    assert here.summary["requests"] == 7000
    # exif: the same table, paths naming the user's URLs.
    here = runner.run_pipeline("exif", {"src": str(local_tree)})
    there = runner.run_pipeline("exif", {"src": remote_tree})
    assert _sorted(there.table, drop=("path",)).equals(_sorted(here.table, drop=("path",)))
    assert sorted(there.table.column("path").to_pylist()) == [
        f"{remote_tree}sub/p0.jpg",
        f"{remote_tree}sub/p1.jpg",
    ]
    assert there.errors == []
    # Every remote byte came through the streams, none through a copy on disk.
    assert rec.stat("requests") > 0 and rec.stat("bytes") > 0


def test_remote_gzip_streams_in_chunks(s3_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A .gz object is decompressed as it arrives: fetched in many ranged GETs, never held whole."""
    fs, bucket = s3_bucket
    monkeypatch.setattr(sources, "STREAM_FIRST_CHUNK", 16 << 10)
    monkeypatch.setattr(sources, "STREAM_CHUNK", 64 << 10)
    raw = ("\n".join(_log_lines(60_000, 9)) + "\n").encode()
    body = gzip.compress(raw, compresslevel=1)
    fs.pipe(f"{bucket}/logs/big.log.gz", body)
    rec = _Recorder(monkeypatch)
    r = runner.run_pipeline("log-sessions", {"src": f"s3://{bucket}/logs/big.log.gz"})
    assert r.summary["requests"] == 60_000 and r.errors == []
    assert rec.stat("bytes") == len(body)  # each byte fetched once
    assert rec.stat("requests") >= len(body) // (64 << 10)  # in chunks, not one GET
    # Read-ahead bounded: 1 current + 4 ahead chunks at most, far below the object.
    assert rec.stat("peak_buffered") <= 5 * (64 << 10) < len(body) // 2


# -- byte ranges -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["log-sessions", "word-count"])
def test_byte_ranges_of_a_remote_input(
    pipeline: str, s3_bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job over one big remote object gives the one-pass result: it is cut into byte ranges
    (tasks), each streaming only its range."""
    fs, bucket = s3_bucket
    body = ("\n".join(_log_lines(20_000, 5)) + "\n").encode()
    name = "big.log" if pipeline == "log-sessions" else "big.txt"
    fs.pipe(f"{bucket}/in/{name}", body)
    mod = importlib.import_module(f"aerofs_kernel.pipelines.{pipeline.replace('-', '_')}")
    monkeypatch.setattr(mod, "SPLIT_BYTES", len(body) // 4)
    params = {"src": f"s3://{bucket}/in/{name}"}
    tasks = runner.plan_job(pipeline, params, 4)
    assert len(tasks) == 4 and all(t["inputs"][0]["byte_range"] for t in tasks)
    rec = _Recorder(monkeypatch)
    partials = [runner.run_task(pipeline, params, t, _engine.Progress(), str(tmp_path / "w")) for t in tasks]
    # Each task fetches its range and, past it, only the end of the line or word crossing it
    # (read-ahead stops at the range's end): the tasks together fetch the object about once.
    assert len(body) <= rec.stat("bytes") <= len(body) + 4 * sources.STREAM_FIRST_CHUNK
    merged = runner.merge_job(pipeline, params, partials, str(tmp_path / "w"))
    one = runner.run_pipeline(pipeline, params)
    keys = (
        ("requests", "sessions", "unique_visitors")
        if pipeline == "log-sessions"
        else ("total_words", "distinct_words")
    )
    assert {k: merged["summary"][k] for k in keys} == {k: one.summary[k] for k in keys}
    if pipeline == "word-count":
        # The tasks' per-file counts merge under the user's URL, not one token per task.
        assert merged["summary"]["per_file"] == {params["src"]: one.summary["total_words"]}


# -- memory, disk --------------------------------------------------------------------------------------

_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from aerofs_kernel import runner, sources
    # A read-ahead budget of 4 x 2 MiB: a bound far below the object read.
    sources.STREAM_FIRST_CHUNK = 256 << 10
    sources.STREAM_CHUNK = 2 << 20
    sources.STREAM_CHUNKS_AHEAD = 3
    sources.STREAM_OBJECTS = 2
    sources.STREAM_BUDGET = 4

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) << 10

    small, big = sys.argv[1], sys.argv[2]
    runner.run_pipeline("log-sessions", {"src": small})  # warm up: imports, pools, first allocations
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    before = peak()
    r = runner.run_pipeline("log-sessions", {"src": big})
    print(json.dumps({"growth": peak() - before, "unparsed": r.summary["unparsed_lines"]}))
    """
)


def test_memory_of_a_big_remote_object_stays_bounded(s3_bucket: tuple[Any, str], tmp_path: Path) -> None:
    """Streaming a 128 MiB object adds only its bounded buffers to a run's peak RSS: the growth over
    the same run on the same bytes as a local file stays far below the object's size.

    The input is lines the parser counts as unparsed and forgets, so the pipeline keeps no state of
    its own that grows with the input; what the remote run adds is the reading."""
    fs, bucket = s3_bucket
    line = b"not an access log line: text the parser counts as unparsed and forgets at once ......\n"
    big = line * ((128 << 20) // len(line))
    (tmp_path / "small.log").write_bytes(line * 1000)
    (tmp_path / "big.log").write_bytes(big)
    fs.put(str(tmp_path / "small.log"), f"{bucket}/mem/small.log")
    fs.put(str(tmp_path / "big.log"), f"{bucket}/mem/big.log")

    def growth(root: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, f"{root}/small.log", f"{root}/big.log"],
            capture_output=True, text=True, check=True, env=os.environ.copy(),
        )  # fmt: skip
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        assert doc["unparsed"] == len(big) // len(line)
        return int(doc["growth"])

    local, remote = growth(str(tmp_path)), growth(f"s3://{bucket}/mem")
    # Read-ahead (1 + 4 chunks of 2 MiB) and the engine's 4 MiB read buffer, with room for allocator
    # slack; a whole-object download would add 128 MiB.
    assert remote - local < 32 << 20, f"remote {remote >> 20} MiB vs local {local >> 20} MiB peak growth"


def test_no_local_copy_is_made(remote_tree: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no usable temporary folder at all, every pipeline still runs on remote inputs: nothing is
    staged to disk."""
    runs = [
        ("csv-to-parquet", str(tmp_path / "pq")),
        ("word-count", None),
        ("log-sessions", str(tmp_path / "sessions")),
        ("exif", str(tmp_path / "exif.parquet")),
    ]
    # The inputs' own problems (photos are not text, ...), as the run reports them with a temp folder.
    expected = {
        p: len(runner.run_pipeline(p, {"src": remote_tree, "dst": str(tmp_path / "first" / p)}).errors)
        for p, _ in runs
    }
    missing = str(tmp_path / "no-such-tmp")
    monkeypatch.setenv("TMPDIR", missing)
    monkeypatch.setattr("tempfile.tempdir", missing)
    for pipeline, dst in runs:
        r = runner.run_pipeline(pipeline, {"src": remote_tree, "dst": dst} if dst else {"src": remote_tree})
        assert len(r.errors) == expected[pipeline], (pipeline, r.errors)
        assert r.outputs or dst is None
    assert not os.path.exists(missing)


def test_exif_reads_only_the_head_of_remote_photos(
    tmp_path: Path, s3_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    piexif = pytest.importorskip("piexif")
    from PIL import Image

    fs, bucket = s3_bucket
    rnd = random.Random(3)
    total = 0
    for i in range(4):
        img = Image.frombytes("RGB", (1200, 900), bytes(rnd.getrandbits(8) for _ in range(1200 * 900 * 3)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=95, exif=piexif.dump({"0th": {piexif.ImageIFD.Make: b"M%d" % i}}))
        fs.pipe(f"{bucket}/photos/{i}.jpg", buf.getvalue())
        total += len(buf.getvalue())
    rec = _Recorder(monkeypatch)
    r = runner.run_pipeline("exif", {"src": f"s3://{bucket}/photos/"})
    assert sorted(r.table.column("Make").to_pylist()) == ["M0", "M1", "M2", "M3"]
    assert r.summary["bytes_read"] == rec.stat("bytes")  # what the engine parsed is what was fetched
    assert rec.stat("bytes") < total // 20, f"fetched {rec.stat('bytes')} of {total} bytes"


# -- failures, secrets ----------------------------------------------------------------------------------


def test_failing_remote_read_is_reported_per_input(
    csv_tree: Path, s3_bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """An object gone between planning and reading fails its input alone, naming its URL; the others
    are converted. Credentials appear nowhere: not in errors, exceptions or logs."""
    secret, key_id = "sekrit-Zq9-do-not-log", "AKIDMARKER0123456789"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    caplog.set_level(logging.INFO)
    fs, bucket = s3_bucket
    fs.put(str(csv_tree) + "/", f"{bucket}/in/", recursive=True)
    params = {"src": f"s3://{bucket}/in/", "dst": str(tmp_path / "out")}
    (task,) = runner.plan_job("csv-to-parquet", params, 1)
    fs.rm(f"{bucket}/in/one.csv")
    part = runner.run_task("csv-to-parquet", params, task, _engine.Progress(), str(tmp_path / "w"))
    gone = f"s3://{bucket}/in/one.csv"
    by_path = {e["path"]: e for e in part["errors"]}
    assert set(by_path) == {gone, f"s3://{bucket}/in/sub/bad.csv"}
    assert gone in by_path[gone]["message"] and "aerofs-stream" not in json.dumps(part["errors"])
    assert sorted(Path(p).relative_to(tmp_path / "out").as_posix() for p in part["outputs"]) == [
        "sub/bad.parquet",  # its good rows (the bad one is reported), as for a local file
        "sub/two.parquet",
    ]
    # Fail-fast: the exception names the URL too.
    with pytest.raises(OSError) as e:
        runner.run_task(
            "csv-to-parquet",
            {**params, "on_error": "fail"},
            {**task, "index": 1},
            _engine.Progress(),
            str(tmp_path / "w2"),
        )
    assert gone in str(e.value) or getattr(e.value, "filename", None) == gone
    text = json.dumps(part, default=str) + str(e.value) + caplog.text
    assert secret not in text and key_id not in text


def test_cancel_stops_streaming(s3_bucket: tuple[Any, str]) -> None:
    fs, bucket = s3_bucket
    fs.pipe({f"{bucket}/big/{i}.csv": b"a,b\n" + b"1,2\n" * (1 << 18) for i in range(3)})
    progress = _engine.Progress()
    progress.cancel()
    with pytest.raises(_engine.Cancelled):
        runner.run_pipeline(
            "csv-to-parquet", {"src": f"s3://{bucket}/big/", "dst": f"s3://{bucket}/o/"}, progress
        )
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/o/0.parquet")


def test_cancel_mid_stream_stops_fetching(
    s3_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while the engine reads a remote object, the run raises Cancelled and stops fetching:
    the rest of the object is never downloaded."""
    import threading

    fs, bucket = s3_bucket
    monkeypatch.setattr(sources, "STREAM_FIRST_CHUNK", 64 << 10)
    monkeypatch.setattr(sources, "STREAM_CHUNK", 256 << 10)
    line = b"not an access log line, counted as unparsed ...........................................\n"
    body = line * ((48 << 20) // len(line))
    fs.pipe(f"{bucket}/c/big.log", body)
    rec = _Recorder(monkeypatch)
    progress = _engine.Progress()
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            runner.run_pipeline("log-sessions", {"src": f"s3://{bucket}/c/big.log"}, progress)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=run)
    t.start()
    while not rec.sets or rec.stat("bytes") < (1 << 20):  # the engine is reading the object
        assert t.is_alive(), outcome
        threading.Event().wait(0.01)
    progress.cancel()
    t.join()
    assert isinstance(outcome[0], _engine.Cancelled), outcome
    assert rec.stat("bytes") < len(body) // 2, f"fetched {rec.stat('bytes')} of {len(body)} bytes"
