"""`just bench csv-split` (`bench/run.py csv-split`): which readers split a CSV with quoted newlines correctly in parallel.

A parallel CSV reader cuts a big file into chunks and must know, at each cut, whether it is inside a
quoted field. Two ways: count quotes from the start of the file (exact; AeroFS does this, one pass of
the reader thread, `engine/src/csv/split.rs`), or guess at the chunk start: take the next newline and
check that the lines after it parse as rows of the right width. The file made here defeats the guess:
every other record's quoted field holds twenty lines that parse as rows of the right width, and its
last inner line makes the closing line the right width too. A reader that starts a chunk inside such
a field either takes the inner lines for rows (silently wrong) or notices and gives up.

Each tool reads the same ~18 MB file; the probe prints the rows and the sum of column `n` it got
against the true ones, or its error. Findings (docs/csv-to-parquet.md) on this machine: DuckDB's
parallel reader refuses the file ("does not support a full read on this file ... parallel = false")
or fails converting a stray `19"` where its chunk began inside a field; Polars and pyarrow (with
``newlines_in_values``) read it right; AeroFS reads it right whatever its block size.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROWS = 100_000
INNER = 20


def make(path: Path) -> tuple[int, int]:
    """Write the file; (rows, sum of n)."""
    with open(path, "w") as f:
        f.write("id,text,n\n")
        for i in range(ROWS):
            if i % 2 == 0:
                inner = "".join(f"{i}{k},fake{k},{k}\n" for k in range(INNER))
                f.write(f'{i},"{inner}{i},tail",{i}\n')
            else:
                f.write(f"{i},plain,{i}\n")
    return ROWS, ROWS * (ROWS - 1) // 2


def _aerofs(path: Path, tmp: Path) -> tuple[int, int]:
    import pyarrow.parquet as pq

    from aerofs_kernel import runner

    got = set()
    for block in (1 << 16, 1 << 20):  # many cuts, most of them inside a quoted field
        out = tmp / f"aerofs-{block}.parquet"
        runner.run_pipeline("csv-to-parquet", {"src": str(path), "dst": str(out), "block_size": block})
        t = pq.read_table(out)
        got.add((t.num_rows, int(sum(t.column("n").to_pylist()))))
    return min(got) if len(got) > 1 else got.pop()  # block sizes that disagree: one of them is wrong


def _duckdb(path: Path, tmp: Path) -> tuple[int, int]:
    import duckdb

    ((rows, total),) = duckdb.execute(f"SELECT count(*), sum(n) FROM read_csv('{path}')").fetchall()
    return int(rows), int(total)


def _polars(path: Path, tmp: Path) -> tuple[int, int]:
    import polars as pl

    t = pl.scan_csv(path).collect()
    return t.height, int(t["n"].sum())


def _pyarrow(path: Path, tmp: Path) -> tuple[int, int]:
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    t = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True))
    return t.num_rows, int(pc.sum(t.column("n")).as_py())


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="aerofs-split-") as d:
        tmp = Path(d)
        path = tmp / "adversarial.csv"
        want = make(path)
        print(f"file: {path.stat().st_size / 1e6:.1f} MB, {want[0]} rows, sum(n) {want[1]}")
        status = 0
        readers: dict[str, Any] = {
            "aerofs": _aerofs,
            "duckdb": _duckdb,
            "polars": _polars,
            "pyarrow": _pyarrow,
        }
        for name, read in readers.items():
            try:
                got = read(path, tmp)
                verdict = "right" if got == want else f"WRONG: {got[0]} rows, sum(n) {got[1]}"
            except Exception as e:  # a peer's failure is the finding, not the probe's
                verdict = f"error: {type(e).__name__}: {' '.join(str(e).split())[:160]}"
            print(f"{name:8s} {verdict}")
            if name == "aerofs" and verdict != "right":
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
