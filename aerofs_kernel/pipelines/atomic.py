"""Outputs a merge writes from Python, made visible only when whole.

Each file is written beside its destination under a hidden temporary name and renamed over it, so a
reader sees the old file or the new one, never a half-written one; a failure removes the temporary file.
(The engine's own outputs go through ``io::AtomicFile`` by the same rule; remote destinations are staged
locally and uploaded by the runner.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


@contextmanager
def atomic_path(dest: str) -> Iterator[str]:
    """A temporary path beside ``dest`` to write to; renamed to ``dest`` when the block ends normally."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(dest)}.aerofs-tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_table(table: pa.Table, dest: str, compression: str = "zstd") -> str:
    """``table`` as CSV when ``dest`` ends in ``.csv``, else as Parquet (zstd: outputs; a task's
    intermediate tables take snappy, faster to write and read back once); returns ``dest``."""
    with atomic_path(dest) as tmp:
        if dest.lower().endswith(".csv"):
            pacsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp, compression=compression)
    return dest


def write_text(dest: str, text: str) -> str:
    """``text`` as UTF-8; returns ``dest``."""
    with atomic_path(dest) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    return dest
