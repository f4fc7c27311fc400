"""The merges' Python-written outputs appear whole or not at all (aerofs_kernel.pipelines.atomic)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from aerofs_kernel.pipelines import atomic


def test_write_table_picks_the_format_from_the_name(tmp_path: Path) -> None:
    t = pa.table({"word": ["a", "b"], "count": [2, 1]})
    assert pq.read_table(atomic.write_table(t, str(tmp_path / "new" / "t.parquet"))).equals(t)
    assert pacsv.read_csv(atomic.write_table(t, str(tmp_path / "t.csv"))).equals(t)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["new", "t.csv", "t.parquet"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "summary.json"
    dest.write_text("old")

    def half_then_fail(table: pa.Table, where: str, **_: object) -> None:
        Path(where).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(atomic.pq, "write_table", half_then_fail)
        with pytest.raises(OSError, match="disk full"):
            atomic.write_table(pa.table({"x": [1]}), str(tmp_path / "t.parquet"))
    with pytest.raises(UnicodeEncodeError):
        atomic.write_text(str(dest), "\ud800")  # a lone surrogate cannot be written as UTF-8
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
