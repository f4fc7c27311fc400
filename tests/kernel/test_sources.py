"""Local listing: folders, suffixes, hidden files and our temporaries, symlink loops, speed; engine
streams without a network (fsspec's memory filesystem, failing streams)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from aerofs_kernel.sources import Sink, list_inputs


def test_folder_listing_filters_and_cuts_loops(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "a.csv").write_text("x\n")
    (tmp_path / "d" / "e" / "b.CSV").write_text("x\n")
    (tmp_path / "d" / ".hidden.csv").write_text("x\n")
    (tmp_path / "d" / "e" / ".b.parquet.aerofs-tmp-1").write_text("x\n")
    (tmp_path / "d" / "c.txt").write_text("x\n")
    os.symlink(tmp_path / "d", tmp_path / "d" / "e" / "loop")
    found = list_inputs(str(tmp_path / "d"), suffixes=(".csv",))
    assert sorted(i.rel for i in found) == ["a.csv", "e/b.CSV"]
    assert all(i.size == 2 and i.local_path == i.url for i in found)
    assert [i.rel for i in list_inputs(str(tmp_path / "d"), suffixes=(".csv",), exclude=["e/*"])] == ["a.csv"]
    with pytest.raises(FileNotFoundError, match="no file matches"):
        list_inputs(str(tmp_path / "d" / "*.json"))


def test_listing_20000_files_is_fast(tmp_path: Path) -> None:
    for d in range(20):
        folder = tmp_path / f"d{d:02}"
        folder.mkdir()
        for i in range(1000):
            (folder / f"{i}.csv").touch()
    t0 = time.perf_counter()
    found = list_inputs(str(tmp_path), suffixes=(".csv",))
    took = time.perf_counter() - t0
    assert len(found) == 20000
    assert took < 3.0, f"listing 20,000 files took {took:.2f} s"


def test_local_sink_is_the_destination(tmp_path: Path) -> None:
    sink = Sink(str(tmp_path / "out"))
    assert not sink.remote and sink.local == str(tmp_path / "out")
    assert sink.commit(["x"]) == ["x"]
    assert Sink(None).local is None


# -- engine streams, without a network: fsspec's in-memory filesystem ---------------------------------


@pytest.fixture
def memfs() -> Any:
    import fsspec

    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/aerofs-test", recursive=True)


def test_memory_fs_inputs_stream_through_the_engine(memfs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any non-local fsspec filesystem streams (here memory://): tokens keep the tree, the chunk size
    does not change the bytes the engine sees (small chunks force many readinto calls across chunk
    boundaries, a .gz included), and the result names the user's URLs."""
    import gzip

    from aerofs_kernel import runner, sources

    monkeypatch.setattr(sources, "STREAM_FIRST_CHUNK", 1000)
    monkeypatch.setattr(sources, "STREAM_CHUNK", 4099)
    text = "".join(f"word{i % 13} other{i % 7}\n" for i in range(20_000))
    memfs.pipe("/aerofs-test/in/a.txt", text.encode())
    memfs.pipe("/aerofs-test/in/sub/b.txt.gz", gzip.compress(text.encode()))
    r = runner.run_pipeline("word-count", {"src": "memory://aerofs-test/in/"})
    assert r.errors == [] and r.summary["total_words"] == 2 * 40_000
    urls = [i.url for i in list_inputs("memory://aerofs-test/in/")]
    assert urls[0].startswith("memory://") and urls[1].endswith("/in/sub/b.txt.gz")
    assert sorted(r.summary["per_file"]) == urls
    with sources.StreamSet() as streams:
        inputs = streams.register(list_inputs("memory://aerofs-test/in/"))
        tokens = [i.local_path for i in inputs]
        assert all(t and t.startswith("aerofs-stream://") for t in tokens)
        assert [t.split("/", 3)[3] for t in tokens if t] == ["a.txt", "sub/b.txt.gz"]
        # Byte ranges of a stream: read_at and open(offset) give the object's bytes.
        s = streams.streams[0]
        assert s.read_at(5, 10) == text.encode()[5:15]
        assert s.open(30_000).read() == text.encode()[30_000:]


class _Failing:
    """A stream whose reads fail, as a remote store's would."""

    def __init__(self, url: str, exc: BaseException) -> None:
        self.url, self.size, self.exc = url, 100, exc

    def open(self, offset: int) -> Any:
        raise self.exc

    def read_at(self, offset: int, n: int) -> bytes:
        raise self.exc


def test_failing_streams_are_io_errors_naming_the_url(tmp_path: Path) -> None:
    """A Python exception inside a read reaches the engine as an I/O error of that input alone, its
    message naming the URL and its kind kept (a missing object is FileNotFoundError)."""
    from aerofs_kernel import _engine

    good = tmp_path / "ok.txt"
    good.write_text("hello world\n")
    tokens = _engine.register_streams(
        [
            ("gone.txt", _Failing("s3://b/gone.txt", FileNotFoundError("b/gone.txt"))),
            ("broken.txt", _Failing("s3://b/broken.txt", ConnectionError("connection reset"))),
        ]
    )
    try:
        out, _tables = _engine.word_count([*tokens, str(good)], "{}", _engine.Progress())
        doc = json.loads(out)
        errors = {e["path"]: e for e in doc["errors"]}
        assert set(errors) == set(tokens)
        assert "s3://b/gone.txt" in errors[tokens[0]]["message"]
        assert [errors[t]["kind"] for t in tokens] == ["not_found", "io"]
        assert (
            "connection reset" in errors[tokens[1]]["message"]
            and "s3://b/broken.txt" in errors[tokens[1]]["message"]
        )
        assert doc["summary"]["total_words"] == 2
        with pytest.raises(FileNotFoundError) as e:
            _engine.word_count([tokens[0]], '{"on_error": "fail"}', _engine.Progress())
        assert "s3://b/gone.txt" in str(e.value)
    finally:
        _engine.unregister_streams(tokens)
    # Unregistered (its run is over): a token names nothing.
    with pytest.raises(FileNotFoundError):
        _engine.word_count([tokens[0]], '{"on_error": "fail"}', _engine.Progress())
