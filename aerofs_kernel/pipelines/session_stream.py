"""A job's sessions merged in one streamed pass, with memory bounded by the sessions open at a point
in time (log-sessions' :meth:`~aerofs_kernel.pipelines.log_sessions.LogSessions.merge`).

Why it can stream: each task's sessions table is in the final order (start, ip, user agent), and a
session joins a session of another task only if it comes within the timeout of it. So a session
whose time span, widened by the timeout, meets no other task's span (min start .. max end) is
*interior*: it joins nothing (a task's own sessions of one key are already more than the timeout
apart) and passes through unchanged. The rest, the *edge* sessions, are walked k-way by start across
the tasks and joined as they become final (:func:`joined_edges`: a session is final once the walk is
more than the timeout past its end; its rows are joined by the vectorized ``merge_sessions`` on their
own), then wait for the watermark (the least start of a session still open) to take their place in
the final order. The tasks' interior sessions and the joined edges are k-way merged in the final
order, window by window, numbered and written (or collected when there is no ``dst``).

What is held: the open edge sessions' rows (with byte ranges of one time-ordered log, those near a
cut; with files of the same hours, e.g. two servers' logs, nearly every session is an edge, but only
the open ones are held), the joined ones waiting for the watermark, per task one row group of edges
and one of interior rows, the window being ordered and the written file's row group in progress (and
the one being written). A task's file is read a row group at a time, never whole: for edges only the
row groups that come near another task (from the footer's statistics), and all of it for the interior
rows. See docs/log-sessions.md, "A job's merge".
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aerofs_kernel.pipelines import atomic
from aerofs_kernel.result import ParquetTable

#: Rows a task's table is read in (and the joined edges are fed in).
BATCH_ROWS = 1 << 14
#: Rows per row group of the written file (the row group in progress is held uncompressed: ~12 MB,
#: and one more while the writer thread encodes it).
ROW_GROUP_ROWS = 1 << 16
#: Columns of (nearly) one value per session, written without a dictionary: per row group a
#: dictionary grows to its page limit and falls back to plain anyway, and with row groups this small
#: that made the file 35% larger (1 GB log: 26.2 MB); plain and zstd: 17.9 MB (one 1Mi row group with
#: dictionaries, as ``pq.write_table`` writes the table: 19.4 MB), and faster to write. The engine
#: writes the same columns plain (``report::PLAIN_COLUMNS``).
PLAIN_COLUMNS = ("session_id", "start", "end", "bytes", "entry_time", "exit_time")
#: The final order of the sessions (ids count from 0 in it); unique: two sessions of one key never
#: start at the same time.
ORDER = [("start", "ascending"), ("ip", "ascending"), ("user_agent", "ascending")]

Source: TypeAlias = pa.Table | ParquetTable
Span: TypeAlias = tuple[int, int]


#: A time unit's ticks per second.
PER_S = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def schema_of(source: Source) -> pa.Schema:
    """The types ``source`` holds its rows in (a file's own: the merge reads and writes in them)."""
    if isinstance(source, ParquetTable):
        with _open(source) as f:
            return f.schema_arrow
    return source.schema


def _open(source: ParquetTable) -> pq.ParquetFile:
    from aerofs_kernel.sources import filesystem

    fs, path = filesystem(source.locate())
    return pq.ParquetFile(fs.open(path, "rb"))


def batches(
    source: Source, columns: list[str] | None = None, pieces: list[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """``source``'s rows in order, ``BATCH_ROWS`` at a time, never whole: a table in memory, or a
    Parquet file read batch by batch. ``pieces``: only these (row groups of a file, batches of a
    table in memory: see :func:`piece_spans`). Memory: a row group of the file (the runner writes
    task tables in row groups of ``BATCH_ROWS``)."""
    if isinstance(source, pa.Table):
        parts = (source if columns is None else source.select(columns)).to_batches(BATCH_ROWS)
        yield from (parts if pieces is None else [parts[i] for i in pieces])
        return
    with _open(source) as f:
        # A row group at a time, on this thread: ``iter_batches`` decodes row groups ahead (~16 of
        # them: 37 MB a task's file here) and on the CPU pool's threads, whose freed pages stay in RSS.
        for i in range(f.metadata.num_row_groups) if pieces is None else pieces:
            yield from f.read_row_group(i, columns=columns, use_threads=False).to_batches(BATCH_ROWS)


def _seconds(a: pa.Array | pa.ChunkedArray) -> Any:
    """Timestamps as whole seconds (int64, truncated)."""
    ticks = pc.cast(a, pa.int64())
    per = PER_S[a.type.unit]
    return ticks if per == 1 else pc.divide(ticks, per)


def _span(lo: int, hi: int, unit: str) -> Span:
    """[lo, hi] in ticks of ``unit`` as whole seconds, widened outwards."""
    per = PER_S[unit]
    return lo // per, -(-hi // per)


def piece_spans(source: Source) -> list[Span | None]:
    """Per piece of a sessions table (a row group of a file, a batch of ``BATCH_ROWS`` rows of a
    table in memory) its (min start, max end) in whole seconds, widened outwards; None: no rows. A
    file's come from its footer's statistics (a row group without them is read for them)."""
    if isinstance(source, pa.Table):
        # All columns: a selection of some may be chunked otherwise, and the pieces must be those
        # :func:`batches` gives (zero-copy slices either way).
        return [_batch_span(b) for b in batches(source)]
    spans: list[Span | None] = []
    with _open(source) as f:
        meta, unit = f.metadata, f.schema_arrow.field("start").type.unit
        for i in range(meta.num_row_groups):
            rg = meta.row_group(i)
            stats = {rg.column(j).path_in_schema: rg.column(j).statistics for j in range(rg.num_columns)}
            lo, hi = stats.get("start"), stats.get("end")
            if not rg.num_rows:
                spans.append(None)
            elif lo is not None and hi is not None and lo.has_min_max and hi.has_min_max:
                spans.append(_span(lo.min_raw, hi.max_raw, unit))
            else:
                spans.append(_batch_span(f.read_row_group(i, columns=["start", "end"])))
    return spans


def _batch_span(b: pa.RecordBatch | pa.Table) -> Span | None:
    if not b.num_rows:
        return None
    start, end = b.column("start"), b.column("end")
    return _span(
        pc.min(pc.cast(start, pa.int64())).as_py(), pc.max(pc.cast(end, pa.int64())).as_py(), start.type.unit
    )


def outer(spans: list[Span | None]) -> Span | None:
    """The span of all of ``spans``."""
    known = [s for s in spans if s is not None]
    return (min(s[0] for s in known), max(s[1] for s in known)) if known else None


def reach_s(timeout_s: float) -> int:
    """How far (whole seconds) a session reaches for another: the timeout rounded up, plus 2 for
    the seconds the spans and times were rounded to (times are truncated, spans widened), so no
    session that could join is taken as interior; a little wider only holds a few more."""
    return int(-(-timeout_s // 1)) + 2


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


def meets(span: Span | None, near: list[Span], reach: int) -> bool:
    """Whether ``span`` widened by ``reach`` meets one of ``near``."""
    return span is not None and any(span[0] - reach <= hi and span[1] + reach >= lo for lo, hi in near)


def edge_mask(batch: pa.RecordBatch, near: list[Span], reach: int) -> pa.Array:
    """Per session, whether [start - reach, end + reach] (whole seconds) meets one of ``near``: it
    may join a session of another task (an edge session); false: interior, it joins nothing."""
    start, end = _seconds(batch.column("start")), _seconds(batch.column("end"))
    mask = pa.repeat(pa.scalar(False), batch.num_rows)
    for lo, hi in near:
        mask = pc.or_(mask, pc.and_(pc.less_equal(start, hi + reach), pc.greater_equal(end, lo - reach)))
    return mask


class _Stream:
    """One sorted input of the k-way merge: the rows read and not yet taken (all with start >= the
    last window's bound), topped up a batch at a time."""

    def __init__(self, rows: Iterator[pa.RecordBatch | pa.Table], schema: pa.Schema):
        self.rows, self.schema = rows, schema
        self.buf = schema.empty_table()
        self.done = False

    def pull(self) -> None:
        for b in self.rows:
            if b.num_rows:
                t = b if isinstance(b, pa.Table) else pa.Table.from_batches([b])
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


def _steps(streams: list[_Stream]) -> Iterator[tuple[int | None, list[pa.Table]]]:
    """The k-way walk of ``streams`` (each sorted by start): per step the bound, the least last
    buffered start of a stream not yet exhausted (no row still to read starts before it; None: all
    read), and per stream its buffered rows that start before it (rows at the bound wait for the next
    step, so the rows of a step all start before those of the next)."""
    for s in streams:
        s.pull()
    while True:
        for s in streams:
            while not s.done and not s.buf.num_rows:
                s.pull()
        live = [s.start(-1) for s in streams if not s.done]
        bound = min(live) if live else None
        yield bound, [s.take_before(bound) for s in streams]
        if bound is None:
            return
        for s in streams:
            if not s.done and s.buf.num_rows and s.start(-1) == bound:
                s.pull()


def ordered(streams: list[_Stream]) -> Iterator[pa.Table]:
    """The rows of ``streams`` (each sorted by :data:`ORDER`) as windows in that order: a step's rows
    (:func:`_steps`), ordered. A window from one stream alone (byte ranges of a time-ordered log:
    nearly all) needs no sort."""
    for _, taken in _steps(streams):
        parts = [p for p in taken if p.num_rows]
        if len(parts) == 1:
            yield parts[0]
        elif parts:
            window = pa.concat_tables(parts)
            yield window.take(pc.sort_indices(window, ORDER))


class Join(Protocol):
    """How sessions cut by tasks are joined (log-sessions' ``SessionJoin``: ``merge_sessions``)."""

    def __call__(self, tables: list[pa.Table]) -> pa.Table:
        """The sessions of ``tables`` (one per task, in task order) joined, in the final order."""
        ...

    def open_rows(self, tables: list[pa.Table], bound: int) -> list[pa.Array]:
        """Per table, per row, whether its joined session may still take a row starting at ``bound``
        (in the tables' time ticks) or later."""
        ...


@dataclasses.dataclass
class Held:
    """What the edge join held: ``edges``, the edge sessions read (all of them pass through it);
    ``peak``, the most rows it held at once (the open sessions' rows and a step's new ones, the joined
    sessions waiting for their turn in the final order)."""

    edges: int = 0
    peak: int = 0


def _start_ticks(t: pa.Table) -> Any:
    return pc.cast(t.column("start"), pa.int64())


def joined_edges(streams: list[_Stream], join: Join, schema: pa.Schema, held: Held) -> Iterator[pa.Table]:
    """The edge sessions of ``streams`` (one per task, in task order, each sorted by start) joined, in
    the final order, as they become final: streamed, with memory bounded by the sessions open at a
    point in time. Per step (:func:`_steps`) the step's rows join the rows still held; a session whose
    end is more than the timeout before the bound is final (no row to come can join it:
    ``join.open_rows``) and its rows are joined by ``join`` on their own, which gives the whole
    merge's session (a final session's rows are all read, and the key's earlier sessions, released
    before it, end more than the timeout before it starts); the rest stay held, one session per key at
    most, its rows in their tasks' tables (so the join's merge order, key, start and task, breaks ties
    as the whole merge's does). A
    joined session waits until it starts before the watermark, the least start of a session still open
    and of a row still to read: nothing that sorts before it can come after."""
    pending = [schema.empty_table() for _ in streams]  # per task: rows of sessions still open
    ready = schema.empty_table()  # joined sessions waiting for the watermark
    for bound, taken in _steps(streams):
        held.edges += sum(x.num_rows for x in taken)
        pending = [pa.concat_tables([p, x]) if x.num_rows else p for p, x in zip(pending, taken, strict=True)]
        if bound is None:
            final, pending = pending, [schema.empty_table() for _ in streams]
        else:
            still = join.open_rows(pending, bound)
            final = [p.filter(pc.invert(m)) for p, m in zip(pending, still, strict=True)]
            pending = [p.filter(m) for p, m in zip(pending, still, strict=True)]
        if any(x.num_rows for x in final):
            ready = pa.concat_tables([ready, join(final)])
        held.peak = max(held.peak, ready.num_rows + sum(p.num_rows for p in pending))
        opens = [pc.min(_start_ticks(p)).as_py() for p in pending if p.num_rows]
        mark = None if bound is None else min([bound, *opens])
        if not ready.num_rows:
            continue
        if mark is None:
            out, ready = ready, schema.empty_table()
        else:
            before = pc.less(_start_ticks(ready), mark)
            out, ready = ready.filter(before), ready.filter(pc.invert(before))
        if out.num_rows:
            yield out.take(pc.sort_indices(out, ORDER))


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
    """The windows into ``dest`` (Parquet, zstd, as :func:`atomic.write_table` writes an output, but
    :data:`PLAIN_COLUMNS` without dictionaries), in row groups of :data:`ROW_GROUP_ROWS`; visible only
    when whole. Each row group is encoded and compressed on a thread (pyarrow lets go of the GIL)
    while the next is read and merged: about half of the merge's CPU is writing. At most one row
    group waits for the writer; an error of the writer is raised here, and an error here leaves no
    file (the writer finishes its row group, the temporary file is removed)."""
    dictionary = [f.name for f in schema if f.name not in PLAIN_COLUMNS]
    with (
        atomic.atomic_path(dest) as tmp,
        pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=dictionary) as w,
        ThreadPoolExecutor(1, thread_name_prefix="aerofs-sessions-writer") as writer,
    ):
        writing: Future[None] | None = None

        def write(rows: pa.Table) -> None:
            nonlocal writing
            if writing is not None:
                writing.result()  # the writer's error, raised here
            writing = writer.submit(w.write_table, rows, row_group_size=ROW_GROUP_ROWS)

        pending: list[pa.Table] = []
        held = 0
        for t in windows:
            pending.append(t)
            held += t.num_rows
            while held >= ROW_GROUP_ROWS:
                rows = pa.concat_tables(pending)
                write(rows.slice(0, ROW_GROUP_ROWS))
                pending, held = [rows.slice(ROW_GROUP_ROWS)], held - ROW_GROUP_ROWS
        if held:
            write(pa.concat_tables(pending))
        if writing is not None:
            writing.result()


def merge(
    sources: list[Source],
    timeout_s: float,
    join: Join,
    dest: str | None,
) -> tuple[pa.Table | None, Figures, Held]:
    """The tasks' sessions tables ``sources`` (in task order) merged: edges joined by ``join`` as they
    become final (:func:`joined_edges`), interior sessions passed through, all in the final order with
    ids from 0, written to ``dest`` (then the table returned is None) or collected. Returns (table,
    figures, what the edge join held)."""
    if not sources:  # no task returned a table: an empty one without columns, as the merge gave
        empty = pa.table({})
        if dest is not None:
            atomic.write_table(empty, dest)
        return (None if dest is not None else empty), Figures(), Held()
    schema = schema_of(sources[0])
    reach = reach_s(timeout_s)
    pieces = [piece_spans(s) for s in sources]
    spans = [outer(p) for p in pieces]
    near = [neighbours(spans, i, reach) for i in range(len(sources))]
    held = Held()

    def edges(src: Source, nb: list[Span], ps: list[Span | None]) -> Iterator[pa.RecordBatch]:
        # Only the pieces (row groups) that come near another task are read for edges: with byte
        # ranges of a time-ordered log, the first and last of each task.
        some = [i for i, p in enumerate(ps) if meets(p, nb, reach)]
        for b in batches(src, pieces=some):
            yield b.filter(edge_mask(b, nb, reach))

    def interior(src: Source, nb: list[Span]) -> Iterator[pa.RecordBatch]:
        for b in batches(src):
            yield b.filter(pc.invert(edge_mask(b, nb, reach))) if nb else b

    edge_streams = [_Stream(edges(*x), schema) for x in zip(sources, near, pieces, strict=True)]
    streams = [_Stream(interior(s, nb), schema) for s, nb in zip(sources, near, strict=True)]
    streams.append(_Stream(joined_edges(edge_streams, join, schema, held), schema))
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
