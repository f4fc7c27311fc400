"""A job's sessions merged in one streamed pass, with memory bounded by the sessions that task
boundaries can cut (log-sessions' :meth:`~aerofs_kernel.pipelines.log_sessions.LogSessions.merge`).

Why it can stream: each task's sessions table is in the final order (start, ip, user agent), and a
session joins a session of another task only if it comes within the timeout of it. So a session
whose time span, widened by the timeout, meets no other task's span (min start .. max end) is
*interior*: it joins nothing (a task's own sessions of one key are already more than the timeout
apart) and passes through unchanged. Only the rest, the *edge* sessions, are held and joined by the
vectorized ``merge_sessions``; the tasks' interior sessions and the joined edges are then k-way merged
in the final order, window by window, numbered and written (or collected when there is no ``dst``).

What is held: the edge sessions (with byte ranges of one time-ordered log, those within the timeout
of a cut: a few minutes of traffic per cut; with files of the same hours, e.g. two servers' logs,
nearly all of them: correct, not bounded), one read batch per task, the window being ordered and the
Parquet row group in progress. A task's table is read twice (edges, then interior rows), batch by
batch, never whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aerofs_kernel.pipelines import atomic
from aerofs_kernel.result import ParquetTable

#: Rows a task's table is read in (and the joined edges are fed in).
BATCH_ROWS = 1 << 16
#: Rows per row group of the written file (the row group in progress is held uncompressed).
ROW_GROUP_ROWS = 1 << 18
#: The final order of the sessions (ids count from 0 in it); unique: two sessions of one key never
#: start at the same time.
ORDER = [("start", "ascending"), ("ip", "ascending"), ("user_agent", "ascending")]

Source: TypeAlias = pa.Table | ParquetTable
Span: TypeAlias = tuple[int, int]


def schema_of(source: Source) -> pa.Schema:
    if isinstance(source, ParquetTable) and source.schema is None:
        with _open(source) as f:
            return f.schema_arrow
    return source.schema


def _open(source: ParquetTable) -> pq.ParquetFile:
    from aerofs_kernel.sources import filesystem

    fs, path = filesystem(source.locate())
    return pq.ParquetFile(fs.open(path, "rb"))


def batches(source: Source, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """``source``'s rows in order, ``BATCH_ROWS`` at a time: a table in memory, or a Parquet file read
    batch by batch (cast to the types the table had in its run, when known)."""
    if isinstance(source, pa.Table):
        yield from (source if columns is None else source.select(columns)).to_batches(BATCH_ROWS)
        return
    with _open(source) as f:
        target = source.schema
        if target is not None and columns is not None:
            target = pa.schema([target.field(c) for c in columns])
        for b in f.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield b if target is None or b.schema == target else b.cast(target)


def _ints(a: pa.Array | pa.ChunkedArray) -> Any:
    return pc.cast(a, pa.int64())


def span(source: Source) -> Span | None:
    """(min start, max end) of a sessions table in its time unit; None when it has no rows."""
    lo = hi = None
    for b in batches(source, ["start", "end"]):
        if b.num_rows:
            s, e = pc.min(_ints(b.column(0))).as_py(), pc.max(_ints(b.column(1))).as_py()
            lo, hi = (s, e) if lo is None else (min(lo, s), max(hi, e))
    return None if lo is None or hi is None else (lo, hi)


def reach_units(timeout_s: float, unit: str) -> int:
    """The timeout in the table's time unit, rounded up and one more: wider than any gap the merge
    joins (it compares in float seconds), so no session that could join is taken as interior."""
    per_s = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    return int(-(-timeout_s * per_s // 1)) + 1


def neighbours(spans: list[Span | None], i: int, reach: int) -> list[Span]:
    """The other tasks' spans that come within ``reach`` of task ``i``'s, as a union of disjoint
    intervals in time order (few: a task's time neighbours)."""
    own = spans[i]
    if own is None:
        return []
    near = sorted(
        s
        for j, s in enumerate(spans)
        if j != i and s is not None and s[0] <= own[1] + reach and s[1] >= own[0] - reach
    )
    union: list[Span] = []
    for lo, hi in near:
        if union and lo <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], hi))
        else:
            union.append((lo, hi))
    return union


def edge_mask(batch: pa.RecordBatch, near: list[Span], reach: int) -> pa.Array:
    """Per session, whether [start - reach, end + reach] meets one of ``near``: it may join a session
    of another task (an edge session); false: interior, it joins nothing."""
    start, end = _ints(batch.column("start")), _ints(batch.column("end"))
    mask = pa.repeat(pa.scalar(False), batch.num_rows)
    for lo, hi in near:
        mask = pc.or_(mask, pc.and_(pc.less_equal(start, hi + reach), pc.greater_equal(end, lo - reach)))
    return mask


class _Stream:
    """One sorted input of the k-way merge: the rows read and not yet taken (all with start >= the
    last window's bound), topped up a batch at a time."""

    def __init__(self, rows: Iterator[pa.RecordBatch], schema: pa.Schema):
        self.rows, self.schema = rows, schema
        self.buf = schema.empty_table()
        self.done = False

    def pull(self) -> None:
        for b in self.rows:
            if b.num_rows:
                t = pa.Table.from_batches([b])
                self.buf = pa.concat_tables([self.buf, t if t.schema == self.schema else t.cast(self.schema)])
                return
        self.done = True

    def start(self, i: int) -> int:
        return int(self.buf.column("start")[i].value)

    def take_before(self, bound: int | None) -> pa.Table:
        """The buffered rows that start before ``bound`` (None: all); rows are sorted by start, so a
        binary search finds them."""
        lo, hi = 0, self.buf.num_rows
        if bound is None:
            lo = hi
        while bound is not None and lo < hi:
            mid = (lo + hi) // 2
            if self.start(mid) < bound:
                lo = mid + 1
            else:
                hi = mid
        taken, self.buf = self.buf.slice(0, lo), self.buf.slice(lo)
        return taken


def ordered(streams: list[_Stream]) -> Iterator[pa.Table]:
    """The rows of ``streams`` (each sorted by :data:`ORDER`) as windows in that order: every row that
    starts before the bound, the least last buffered start of a stream not yet exhausted (no row still
    to read starts before it), is taken and ordered; rows at the bound wait for the next window. A
    window from one stream alone (byte ranges of a time-ordered log: nearly all) needs no sort."""
    for s in streams:
        s.pull()
    while True:
        for s in streams:
            while not s.done and not s.buf.num_rows:
                s.pull()
        live = [s.start(-1) for s in streams if not s.done]
        bound = min(live) if live else None
        parts = [
            s.take_before(bound) for s in streams if s.buf.num_rows and (bound is None or s.start(0) < bound)
        ]
        parts = [p for p in parts if p.num_rows]
        if len(parts) == 1:
            yield parts[0]
        elif parts:
            window = pa.concat_tables(parts)
            yield window.take(pc.sort_indices(window, ORDER))
        if bound is None:
            return
        for s in streams:
            if not s.done and s.buf.num_rows and s.start(-1) == bound:
                s.pull()


class Figures:
    """The summary's session figures, from the windows as they pass: integer sums and a count per
    distinct duration (for the exact median), so they equal those of the whole table."""

    def __init__(self) -> None:
        self.n = self.bounces = self.duration = self.pages = self.bots = 0
        self.durations: Counter[int] = Counter()

    def add(self, t: pa.Table) -> None:
        self.n += t.num_rows
        self.bounces += pc.sum(pc.less_equal(t.column("pages"), 1)).as_py() or 0
        self.duration += pc.sum(t.column("duration_s")).as_py() or 0
        self.pages += pc.sum(t.column("pages")).as_py() or 0
        self.bots += pc.sum(t.column("is_bot")).as_py() or 0
        vc = pc.value_counts(t.column("duration_s"))
        for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
            self.durations[v] += c

    def median(self) -> float:
        """The middle duration (the mean of the middle two for an even count), from the counts."""
        if not self.n:
            return 0.0
        lo_i, hi_i = (self.n - 1) // 2, self.n // 2
        lo = hi = None
        seen = 0
        for v in sorted(self.durations):
            seen += self.durations[v]
            if lo is None and seen > lo_i:
                lo = v
            if seen > hi_i:
                hi = v
                break
        assert lo is not None and hi is not None
        return (lo + hi) / 2

    def summary(self) -> dict[str, Any]:
        """``sessions`` and, when there are any, the figures the summary derives from them."""
        if not self.n:
            return {"sessions": 0}
        return {
            "sessions": self.n,
            "bounce_rate": self.bounces / self.n,
            "mean_duration_s": self.duration / self.n,
            "median_duration_s": self.median(),
            "pages_per_session": self.pages / self.n,
            "bot_sessions": self.bots,
        }


def _numbered(t: pa.Table, first: int, field: pa.Field) -> pa.Table:
    """``t`` with ``session_id`` first, first + 1, ... (its ids in the final order)."""
    ones = pa.repeat(pa.scalar(1, pa.int64()), t.num_rows)
    ids = pc.add(pc.cumulative_sum(ones), first - 1)
    return t.set_column(t.schema.get_field_index(field.name), field, pc.cast(ids, field.type))


def _write(windows: Iterator[pa.Table], dest: str, schema: pa.Schema) -> None:
    """The windows into ``dest`` (Parquet, zstd, as :func:`atomic.write_table` writes an output), in
    row groups of :data:`ROW_GROUP_ROWS`; visible only when whole."""
    with atomic.atomic_path(dest) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        pending: list[pa.Table] = []
        held = 0
        for t in windows:
            pending.append(t)
            held += t.num_rows
            while held >= ROW_GROUP_ROWS:
                rows = pa.concat_tables(pending)
                w.write_table(rows.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                pending, held = [rows.slice(ROW_GROUP_ROWS)], held - ROW_GROUP_ROWS
        if held:
            w.write_table(pa.concat_tables(pending))


def merge(
    sources: list[Source],
    timeout_s: float,
    join: Callable[[list[pa.Table]], pa.Table],
    dest: str | None,
) -> tuple[pa.Table | None, Figures, int]:
    """The tasks' sessions tables ``sources`` (in task order) merged: edges joined by ``join`` (the
    vectorized merge of a list of per-task tables), interior sessions passed through, all in the
    final order with ids from 0, written to ``dest`` (then the table returned is None) or collected.
    Returns (table, figures, edge sessions held)."""
    if not sources:  # no task returned a table: an empty one without columns, as the merge gave
        empty = pa.table({})
        if dest is not None:
            atomic.write_table(empty, dest)
        return (None if dest is not None else empty), Figures(), 0
    schema = schema_of(sources[0])
    reach = reach_units(timeout_s, schema.field("start").type.unit)
    spans = [span(s) for s in sources]
    near = [neighbours(spans, i, reach) for i in range(len(sources))]
    edges = []
    for src, nb in zip(sources, near, strict=True):
        # A task with no neighbour has no edges: its table is read once, by the stream below.
        rows = [b.filter(edge_mask(b, nb, reach)) for b in batches(src)] if nb else []
        edges.append(pa.Table.from_batches(rows, schema=schema) if rows else schema.empty_table())
    held = sum(e.num_rows for e in edges)
    joined = join(edges) if held else schema.empty_table()
    del edges

    def interior(src: Source, nb: list[Span]) -> Iterator[pa.RecordBatch]:
        for b in batches(src):
            yield b.filter(pc.invert(edge_mask(b, nb, reach))) if nb else b

    streams = [_Stream(interior(s, nb), schema) for s, nb in zip(sources, near, strict=True)]
    streams.append(_Stream(iter(joined.to_batches(BATCH_ROWS)), schema))
    figures = Figures()
    id_field = schema.field("session_id")

    def windows() -> Iterator[pa.Table]:
        for w in ordered(streams):
            w = _numbered(w, figures.n, id_field)
            figures.add(w)
            yield w

    if dest is not None:
        _write(windows(), dest, schema)
        return None, figures, held
    table = pa.concat_tables([schema.empty_table(), *windows()]).combine_chunks()
    return table, figures, held
