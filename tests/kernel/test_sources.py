"""Local listing: folders, suffixes, hidden files and our temporaries, symlink loops, speed."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
