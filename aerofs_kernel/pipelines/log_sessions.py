"""``log-sessions``: visitor sessions and a traffic report from Apache/Nginx access logs (Rust engine).

Lines in Common or Combined format (auto-detected per line), or in a custom ``log_format`` (GoAccess
``%h %^[%d:%t %^] "%r" %s %b "%R" "%u"`` or nginx ``$remote_addr [$time_local] "$request" ...`` style),
.gz/.zst decompressed, are streamed through the engine in parallel blocks with memory bounded by the
sessions (never one record per request). A session is a maximal run of one key's requests (IP + user
agent, or IP) no more than ``timeout_minutes`` apart *in time order*, whatever order the lines come in:
rotated files in any order, out-of-order lines and the tasks of a job all give the result of one pass
over the lines sorted by time (ties in input order).

A job may cut a big uncompressed log, local or remote, into byte ranges (:meth:`LogSessions.plan`,
``path#bytes=S-E``: the lines starting in the range). A remote range is streamed from just before its
start, never from the object's start: the line numbers of its unparsed samples count from there in the
task and are made the object's at the merge (:mod:`~aerofs_kernel.pipelines.remote_ranges`). Each task also returns ``visitors`` (ip, user_agent, day) and
``counts`` (kind, value, hits) tables, so :meth:`LogSessions.merge` is exact: sessions cut by tasks are
joined, unique visitors are a distinct count of the union, top lists come from the summed counts. Outputs under ``dst``: ``sessions.parquet``,
``summary.json`` and ``report.html`` (self-contained, inline SVG charts). With ``dst`` the engine writes
``sessions.parquet`` as the run goes (memory bounded by the open sessions, not the finished ones) and the
result's ``sessions`` table is read from that file the first time it is used (a notebook's display only
peeks at its first rows), so a log of millions of sessions is not loaded into the kernel unasked. Summary keys: ``requests,
sessions, unique_visitors`` (GoAccess's definition: same IP, date and user agent), ``bytes,
unparsed_lines`` plus bounce rate, durations, pages per session, top pages/referrers/user agents,
status codes, traffic per hour and day, and samples of unparsed lines.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import json
import os
from collections import Counter
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import atomic, register, remote_ranges, session_stream
from aerofs_kernel.pipelines.base import Pipeline, RunOutput, TaskTables, split_into_ranges, split_range
from aerofs_kernel.result import lazy, peek

#: Uncompressed logs larger than this (and than their share of the tasks) are cut into byte ranges.
SPLIT_BYTES = 256 << 20

ASSETS = ["css", "js", "png", "jpg", "jpeg", "gif", "ico", "svg", "webp", "woff", "woff2", "ttf", "eot", "map",
          "mp4", "webm"]  # fmt: skip

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "log-sessions",
    "type": "object",
    "required": ["src"],
    "additionalProperties": False,
    "properties": {
        "src": {
            "description": "Access log file(s) (.gz/.zst too), folder or glob; rotated files are merged in "
            "time order. Local or fsspec URL.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "dst": {
            "type": ["string", "null"],
            "default": None,
            "description": "Folder for sessions.parquet, summary.json and report.html. None: tables only.",
        },
        "log_format": {
            "type": "string",
            "minLength": 1,
            "default": "auto",
            "examples": [
                "auto",
                "combined",
                "common",
                '%h %^[%d:%t %^] "%r" %s %b "%R" "%u"',
                '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                '"$http_referer" "$http_user_agent"',
            ],
            "description": "auto/combined/common: the built-in parser (Common and Combined recognised per "
            "line). Otherwise a format string, GoAccess style (%h host, %e user, %x or %d:%t time, %r "
            "request, %m %U %q %H, %s status, %b bytes, %R referrer, %u user agent, %^ ignored) or nginx "
            "log_format style ($remote_addr, $remote_user, $time_local, $time_iso8601, $request, $status, "
            "$body_bytes_sent, $http_referer, $http_user_agent; other variables are read and ignored).",
        },
        "session_key": {
            "enum": ["ip_ua", "ip"],
            "default": "ip_ua",
            "description": "What identifies a visitor's session: IP address and user agent, or IP only.",
        },
        "timeout_minutes": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 30,
            "description": "Inactivity (minutes) after which the next request starts a new session.",
        },
        "asset_extensions": {
            "type": "array",
            "items": {"type": "string"},
            "default": ASSETS,
            "description": "File extensions of asset requests, which count as requests but not pages.",
        },
        "top": {"type": "integer", "minimum": 1, "default": 10, "description": "Length of the top lists."},
        "unparsed_samples": {
            "type": "integer",
            "minimum": 0,
            "default": 20,
            "description": "How many unparsed lines to keep (file, line number, text) in the summary.",
        },
        "threads": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Worker threads; 0: one per core.",
        },
        "chunk_size": {
            "type": "integer",
            "minimum": 1,
            "default": 8388608,
            "description": "Bytes per parallel chunk (cut at newlines). Mostly for tests.",
        },
        "on_error": {
            "enum": ["skip", "fail"],
            "default": "skip",
            "description": "An unreadable file: record it in errors and go on (skip), or stop (fail). "
            "Malformed lines are never fatal: they are counted in unparsed_lines.",
        },
    },
}


def _bars(title: str, items: list[tuple[str, float]]) -> str:
    if not items:
        return f"<h2>{html.escape(title)}</h2><p>none</p>"
    w, bh = 640, 18
    top = max(v for _, v in items) or 1
    rows = []
    for i, (k, v) in enumerate(items):
        y = i * (bh + 4)
        rows.append(
            f'<rect x="200" y="{y}" width="{max(1, int(400 * v / top))}" height="{bh}" fill="#3b82f6"/>'
            f'<text x="195" y="{y + 13}" text-anchor="end" font-size="11">{html.escape(str(k)[:40])}</text>'
            f'<text x="{205 + int(400 * v / top)}" y="{y + 13}" font-size="11">{v:g}</text>'
        )
    h = len(items) * (bh + 4)
    return f'<h2>{html.escape(title)}</h2><svg width="{w}" height="{h}" role="img">{"".join(rows)}</svg>'


def render_report(summary: dict[str, Any]) -> str:
    """A self-contained HTML page (inline SVG, no scripts, no network) of ``summary``."""
    figures = [
        (k, summary.get(k))
        for k in ("requests", "unique_visitors", "sessions", "bytes", "bounce_rate", "mean_duration_s",
                  "median_duration_s", "pages_per_session", "bot_sessions", "unparsed_lines")
    ]  # fmt: skip
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in figures)
    parts = [
        _bars(
            "Requests per hour", [(f"{h:02d}:00", v) for h, v in enumerate(summary.get("hits_per_hour", []))]
        ),
        _bars("Requests per day", list(summary.get("hits_per_day", {}).items())),
        _bars("Status codes", list(summary.get("status_codes", {}).items())),
        _bars("Top pages", [(x["value"], x["hits"]) for x in summary.get("top_pages", [])]),
        _bars("Top referrers", [(x["value"], x["hits"]) for x in summary.get("top_referrers", [])]),
        _bars("Top user agents", [(x["value"], x["hits"]) for x in summary.get("top_user_agents", [])]),
    ]
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>AeroFS log sessions</title>'
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}</style></head>"
        f"<body><h1>Log sessions</h1><table>{table}</table>{''.join(parts)}</body></html>"
    )


def write_reports(dst: str, summary: dict[str, Any]) -> list[str]:
    """``summary.json`` and ``report.html`` under ``dst``."""
    return [
        atomic.write_text(os.path.join(dst, "summary.json"), json.dumps(summary, indent=2)),
        atomic.write_text(os.path.join(dst, "report.html"), render_report(summary)),
    ]


def _sessions_file(out: RunOutput, written: str) -> str:
    """Where ``sessions.parquet`` is when the table is first used: where the engine wrote it, or, for a
    remote ``dst`` (written in a local staging folder, uploaded, the folder removed), the URL the
    runner put in the outputs."""
    if os.path.exists(written):
        return written
    for o in out.outputs:
        if o.rstrip("/").rsplit("/", 1)[-1] == "sessions.parquet":
            return o
    return written


#: The per-session counters a joined session sums.
COUNTERS = ("requests", "pages", "bytes", "status_2xx", "status_3xx", "status_4xx", "status_5xx")


def _arange(n: int) -> pa.Array:
    """0, 1, ..., n - 1 (int64), without a Python list."""
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), 1)


def _starts(a: pa.Array) -> pa.Array:
    """Whether each value differs from the one before (the first: true)."""
    return pa.concat_arrays([pa.array([True]), pc.not_equal(a.slice(1), a.slice(0, len(a) - 1))])


def _ends(a: pa.Array) -> pa.Array:
    """Whether each value differs from the one after (the last: true)."""
    return pa.concat_arrays([pc.not_equal(a.slice(0, len(a) - 1), a.slice(1)), pa.array([True])])


def _codes(column: pa.ChunkedArray) -> pa.Array:
    """Per row, the rank (int64, from 1) of its string among the column's distinct strings: comparing
    codes compares the strings (UTF-8 byte order is code point order, as Python compares), at integer
    cost, and the sorts below never move strings."""
    enc = pa.table({"v": pc.dictionary_encode(column)}).unify_dictionaries().column("v").combine_chunks()
    rank = pc.rank(enc.dictionary, sort_keys="ascending", tiebreaker="first")
    return pc.take(rank, enc.indices).cast(pa.int64())


def _running_max(values: pa.Array, segment: pa.Array) -> pa.Array:
    """The running maximum of ``values`` (int64), restarted where ``segment`` (nondecreasing int64)
    changes: one cumulative max of ``segment * (D + 1) + rank`` over the ranks of the D distinct values,
    so no segment reaches into the next and no offset times can overflow, however far apart they are."""
    rank = pc.rank(values, sort_keys="ascending", tiebreaker="dense").cast(pa.int64())
    distinct = pc.unique(values)
    distinct = distinct.take(pc.sort_indices(distinct))
    offset = pc.multiply(segment, len(distinct) + 1)
    top = pc.subtract(pc.cumulative_max(pc.add(offset, rank)), offset)
    return distinct.take(pc.subtract(top, 1))


def _pick(rows: pa.Array, group: pa.Array, time: pa.ChunkedArray, part: pa.Array, latest: bool) -> pa.Array:
    """Per group (``group``: the nondecreasing group ids of ``rows``, which are in merge order) the row
    with the earliest ``time`` (``latest``: the latest), nulls never chosen over a time; on a tie the
    row of the earlier task (``part``: per row of the tables, its task; ``latest``: the later task);
    a group of nulls only: its first row. This is what one pass over the lines keeps (the engine's
    entry is the least (time, line), its exit the greatest, and the tasks' lines are in task order),
    whatever the order of the pieces' starts: two servers' pieces of one visitor's session overlap in
    time, so the piece that starts first may be the later task's. A task's pieces of one key are more
    than the timeout apart, so no two rows of a group tie in (time, task)."""
    time = time.combine_chunks()
    at = time.take(rows)
    t = pa.table({"g": group, "v": pc.is_valid(at), "t": at, "p": part.take(rows)})
    # Times before nulls for entries, after them for exits (``v``, not the sort's null placement,
    # whose form changed across pyarrow versions), so a group's chosen row is null only if all are.
    order = pc.sort_indices(
        t,
        [
            ("g", "ascending"),
            ("v", "ascending" if latest else "descending"),
            ("t", "ascending"),
            ("p", "ascending"),
        ],
    )
    g = group.take(order)
    chosen = rows.take(order.filter(_ends(g) if latest else _starts(g)))
    return pc.if_else(pc.is_null(time.take(chosen)), rows.filter(_starts(group)), chosen)


class _Chains:
    """The rows of ``tables`` in merge order, cut into sessions: what :func:`merge_sessions` joins and
    :func:`open_rows` asks of, computed one way for both. Merge order is (key, start, table) with ties
    in table order (the tables: one per task, in task order, which is input order: the plan keeps it,
    so a session's first row is its first line's, as in one pass); a row starts a session when its key
    changes or its start is more than ``timeout_s`` after the running maximum of ``end`` within its
    key (its session's end so far: a task's sessions have ``start <= end``)."""

    def __init__(self, tables: list[pa.Table], timeout_s: float, by_ua: bool):
        t = self.t = pa.concat_tables(tables)  # zero-copy: the tasks' tables have one schema
        n = self.n = t.num_rows
        unit = t.schema.field("start").type.unit
        self.per_s = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
        self.ip, self.ua = _codes(t.column("ip")), _codes(t.column("user_agent"))
        # Codes are in 1..n, so ip * (n + 1) + ua is one integer per (ip, user agent).
        key = pc.add(pc.multiply(self.ip, n + 1), self.ua) if by_ua else self.ip
        part = self.part = pa.concat_arrays(
            [pa.repeat(pa.scalar(i, pa.int32()), x.num_rows) for i, x in enumerate(tables)]
        )
        start = pc.cast(t.column("start"), pa.int64()).combine_chunks()
        end = pc.cast(t.column("end"), pa.int64()).combine_chunks()
        self.order = pc.sort_indices(
            pa.table({"k": key, "s": start, "p": part}),
            [("k", "ascending"), ("s", "ascending"), ("p", "ascending")],
        )
        key, self.start, end = key.take(self.order), start.take(self.order), end.take(self.order)
        new_key = _starts(key)
        self.reach = _running_max(end, pc.cumulative_sum(pc.cast(new_key, pa.int64())))
        # The gap in seconds as a float, as timedelta.total_seconds() gave it: the same rational, rounded once.
        gap = self.gap(self.start.slice(1), self.reach.slice(0, n - 1))
        self.new = pc.or_(new_key, pa.concat_arrays([pa.array([False]), pc.greater(gap, timeout_s)]))
        # Positions in merge order of each session's first and last row.
        self.first = _arange(n).filter(self.new)
        self.last = pa.concat_arrays([pc.subtract(self.first.slice(1), 1), pa.array([n - 1], pa.int64())])

    def gap(self, later: Any, end: Any) -> Any:
        """``later - end`` (times in the tables' ticks) in seconds, as a float."""
        return pc.divide(pc.cast(pc.subtract(later, end), pa.float64()), float(self.per_s))

    def session(self) -> Any:
        """Per row in merge order, its session's index (from 0)."""
        return pc.subtract(pc.cumulative_sum(pc.cast(self.new, pa.int64())), 1)


def open_rows(tables: list[pa.Table], timeout_s: float, by_ua: bool, bound: int) -> list[pa.Array]:
    """Per table, per row, whether its session (as :func:`merge_sessions` cuts the rows of ``tables``)
    may still be joined by a row that starts at ``bound`` (the tables' ticks) or later: its end is not
    more than ``timeout_s`` before ``bound``, by the gap rule of the merge (a float in seconds, which
    only grows with the later row's start, so the rows still to come start no session before it). The
    others are final: their sessions are the whole merge's. One such session per key at most (the
    key's last); the streamed merge holds its rows."""
    sizes = [x.num_rows for x in tables]
    if not sum(sizes):
        return [pa.array([], pa.bool_()) for _ in tables]
    c = _Chains(tables, timeout_s, by_ua)
    ends = c.reach.take(c.last)
    still = pc.less_equal(c.gap(pa.repeat(pa.scalar(bound, pa.int64()), len(ends)), ends), timeout_s)
    # Per row in merge order, then back to the rows' own places (the inverse of the merge order).
    mask = still.take(c.session()).take(pc.sort_indices(c.order))
    offsets = [0, *itertools.accumulate(sizes)]
    return [mask.slice(a, b - a) for a, b in itertools.pairwise(offsets)]


def merge_sessions(tables: list[pa.Table], timeout_s: float, by_ua: bool = True) -> pa.Table:
    """Join sessions of the same key that tasks cut apart: per key, sessions whose time spans overlap
    or lie within ``timeout_s`` of each other are one session, which is what one pass gives (see the
    engine's ``sessionize`` module). Entry/exit pages follow ``entry_time``/``exit_time``, ties in
    time by task (:func:`_pick`).

    Vectorized (Arrow kernels, no Python per row): the rows of all tasks cut into sessions in merge
    order (:class:`_Chains`). A session keeps its first row's columns (ip, user agent, start, is_bot),
    sums the counters, takes the maximum end and the entry/exit of :func:`_pick`; sessions are then
    ordered by (start, ip, user agent) and numbered. The tests keep the earlier row-by-row Python merge
    as the reference this must equal."""
    if not tables:
        return pa.table({})
    if not sum(x.num_rows for x in tables):
        return pa.concat_tables(tables).combine_chunks()
    ch = _Chains(tables, timeout_s, by_ua)
    t, schema, per_s = ch.t, ch.t.schema, ch.per_s
    ip, ua, order, start, reach, first, last = ch.ip, ch.ua, ch.order, ch.start, ch.reach, ch.first, ch.last
    rows = order.take(first)  # each session's first row in t
    joined = pc.greater(last, first)
    cols: dict[str, Any] = {}
    for c in COUNTERS:
        total = pc.cumulative_sum(t.column(c).take(order))
        # Unsigned: total[last] >= total[first], so the sum never goes through a negative.
        cols[c] = pc.add(pc.subtract(total.take(last), total.take(first)), t.column(c).take(rows))
    ends = reach.take(last)
    cols["end"] = ends
    span = pc.divide(pc.subtract(ends, start.take(first)), per_s)  # int((end - start).total_seconds())
    cols["duration_s"] = pc.if_else(joined, span, t.column("duration_s").take(rows))
    entry = exit_ = rows
    if pc.any(joined).as_py():
        # Only the rows of joined sessions need choosing (most sessions were never cut).
        session = ch.session()
        member = pc.greater(pc.take(pc.subtract(last, first), session), 0)
        sub, group = order.filter(member), session.filter(member)
        entry = pc.replace_with_mask(
            rows, joined, _pick(sub, group, t.column("entry_time"), ch.part, latest=False)
        )
        exit_ = pc.replace_with_mask(
            rows, joined, _pick(sub, group, t.column("exit_time"), ch.part, latest=True)
        )
    final = pc.sort_indices(
        pa.table({"s": start.take(first), "i": ip.take(rows), "u": ua.take(rows)}),
        [("s", "ascending"), ("i", "ascending"), ("u", "ascending")],
    )
    # One gather per column, straight into the final order (indices are composed first, never the strings).
    src = {"entry_time": entry, "entry_page": entry, "exit_time": exit_, "exit_page": exit_}
    out = []
    for f in schema:
        if f.name == "session_id":
            col = _arange(len(final))
        elif f.name in cols:
            col = pc.take(cols[f.name], final)
        else:
            col = t.column(f.name).take(pc.take(src.get(f.name, rows), final))
        out.append(pc.cast(col, f.type))
    return pa.Table.from_arrays(out, schema=schema)


@dataclasses.dataclass(frozen=True)
class SessionJoin:
    """The streamed merge's join (:class:`~aerofs_kernel.pipelines.session_stream.Join`): both
    questions answered by the one cut into sessions of :class:`_Chains`."""

    timeout_s: float
    by_ua: bool = True

    def __call__(self, tables: list[pa.Table]) -> pa.Table:
        return merge_sessions(tables, self.timeout_s, self.by_ua)

    def open_rows(self, tables: list[pa.Table], bound: int) -> list[pa.Array]:
        return open_rows(tables, self.timeout_s, self.by_ua, bound)


#: Visitor rows of shared days held at once for their distinct count (a group of days; a day with more
#: rows is held alone): ~20 MB of (ip, user agent, day) and the group-by's table.
VISITOR_ROWS = 1 << 18


def unique_visitors(sources: list[session_stream.Source]) -> int:
    """The distinct (ip, user agent, day) of the tasks' ``visitors`` tables, read batch by batch. A
    task's rows are distinct already (as its run counts them), so the rows of a day only one task saw
    are counted (a first pass counts rows per day and task); the days two or more tasks saw (a cut's
    day; every day of files of the same days, two servers' logs) are counted distinct over their
    union a group of days at a time, at most :data:`VISITOR_ROWS` rows (or one day's), a pass over
    the tasks' tables each: memory bounded by the group, not by the days of the input."""
    per_task: list[Counter[Any]] = []
    for src in sources:
        rows: Counter[Any] = Counter()
        for b in session_stream.batches(src, ["day"]):
            vc = pc.value_counts(b.column(0))
            for d, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
                rows[d] += c
        per_task.append(rows)
    tasks = Counter(d for rows in per_task for d in rows)
    n = sum(c for rows in per_task for d, c in rows.items() if tasks[d] == 1)
    groups: list[list[Any]] = [[]]
    held = 0
    for d in sorted(d for d, k in tasks.items() if k > 1):
        day_rows = sum(rows[d] for rows in per_task)
        if groups[-1] and held + day_rows > VISITOR_ROWS:
            groups.append([])
            held = 0
        groups[-1].append(d)
        held += day_rows
    day_type = session_stream.schema_of(sources[0]).field("day").type
    for days in filter(None, groups):
        shared = pa.array(days, day_type)
        group = [
            b.filter(pc.is_in(b.column("day"), value_set=shared))
            for src in sources
            for b in session_stream.batches(src)
        ]
        n += pa.Table.from_batches(group).group_by(["ip", "user_agent", "day"]).aggregate([]).num_rows
    return n


def contiguous_plan(items: list[tuple[str, int]], max_tasks: int) -> list[list[str]]:
    """``items`` (path or range, size) cut into ``min(max_tasks, len(items))`` contiguous groups, in
    order, whose largest total size is the least any such cut can give: the concatenated groups are
    ``items`` again, so task order is input order (what the merge's tie rule needs). The least
    largest load is found by bisection (a greedy fill under a cap needs at most ``max_tasks`` groups
    exactly when some cut does); the fill then opens a new group early only when the items left are
    as many as the groups still to open, so no task is left empty and none exceeds the cap."""
    if not items:
        return []
    sizes = [max(s, 1) for _, s in items]
    k = max(1, min(max_tasks, len(items)))

    def groups_under(cap: int) -> int:
        n, load = 1, 0
        for s in sizes:
            if load and load + s > cap:
                n, load = n + 1, 0
            load += s
        return n

    lo, hi = max(sizes), sum(sizes)
    while lo < hi:
        mid = (lo + hi) // 2
        if groups_under(mid) <= k:
            hi = mid
        else:
            lo = mid + 1
    out: list[list[str]] = [[]]
    load = 0
    for i, ((item, _), s) in enumerate(zip(items, sizes, strict=True)):
        if out[-1] and (load + s > lo or len(items) - i == k - len(out)):
            out.append([])
            load = 0
        out[-1].append(item)
        load += s
    return out


class LogSessions(Pipeline):
    name: ClassVar[str] = "log-sessions"
    title: ClassVar[str] = "Log sessions"
    description: ClassVar[str] = (
        "Parse Apache/Nginx access logs (Common/Combined, gzip) into visitor sessions (IP + user agent, "
        "30-minute inactivity) and a traffic report: requests, unique visitors, bounce rate, durations, top "
        "pages, referrers, user agents, status codes, traffic per hour and day."
    )
    schema: ClassVar[dict[str, Any]] = SCHEMA
    input_suffixes: ClassVar[tuple[str, ...] | None] = None

    def run(
        self, inputs: list[str], dst: str | None, options: dict[str, Any], progress: _engine.Progress
    ) -> RunOutput:
        # With dst the engine writes sessions.parquet as the run goes and returns no sessions table.
        out = self._engine_run(inputs, options, progress, {"output_dir": dst} if dst else {})
        # No `visitors` table (the engine builds it only for a task): a run has their count.
        out.tables.pop("visitors", None)
        if dst:
            parquet = os.path.join(dst, "sessions.parquet")
            # summary.json again, as Python writes it (and after the samples' lines are located).
            out.outputs = [parquet, *write_reports(dst, out.summary)]
            # The engine's (empty) sessions table has the table's types, which the file cannot all keep.
            schema = out.tables["sessions"].schema
            out.tables = lazy(out.tables, "sessions", lambda: _sessions_file(out, parquet), schema)
        return out

    def run_task(
        self,
        inputs: list[str],
        dst: str | None,
        options: dict[str, Any],
        progress: _engine.Progress,
        tables: TaskTables,
    ) -> RunOutput:
        """A job's task: the engine writes the sessions table into the task's file as the run goes
        (``sessions_file``: atomic, in the runner's row groups, with the start/end statistics the
        merge's spans come from), so a task holds its open sessions, not all of them, and its
        ``sessions`` is that file, never read here. No summary.json or report.html: the job's merge
        writes those. ``visitors`` (asked of the engine for the merge's union: a run has only their
        count) and ``counts`` stay in memory for the runner to write."""
        path = tables.path("sessions")
        eng = {"sessions_file": path, "row_group_rows": tables.row_group_rows, "visitors_table": True}
        out = self._engine_run(inputs, options, progress, eng)
        # The file's own types, as the runner's written tables read back (times in milliseconds).
        out.tables = lazy(out.tables, "sessions", lambda: path)
        return out

    def _engine_run(
        self, inputs: list[str], options: dict[str, Any], progress: _engine.Progress, sink: dict[str, Any]
    ) -> RunOutput:
        """The engine's run over ``inputs`` (``path#bytes=S-E`` items: byte ranges), ``sink``: where
        it writes the sessions (``output_dir`` or ``sessions_file``; none: the table is returned)."""
        eng = {k: v for k, v in options.items() if k not in ("src", "dst")}
        paths, ranges = zip(*(split_range(i) for i in inputs), strict=True) if inputs else ((), ())
        if any(r is not None for r in ranges):
            eng["byte_ranges"] = list(ranges)
        eng.update(sink)
        out = RunOutput.from_engine(_engine.log_sessions(list(paths), json.dumps(eng), progress))
        views = remote_ranges.views(list(paths))
        if views:
            # A range view starts at its range's start - 1, so the engine counts its lines from there
            # (it reads nothing before it); the merge makes them the object's.
            remote_ranges.locate(out.summary.get("unparsed_samples", []), "file", views)
            remote_ranges.locate(out.errors, "path", views)
            out.parts[remote_ranges.PARTS_KEY] = remote_ranges.parts(views)
        return out

    def plan(self, inputs: list[tuple[str, int]], options: dict[str, Any], max_tasks: int) -> list[list[str]]:
        """Whole files, except that an uncompressed log bigger than ``SPLIT_BYTES`` (and than its share of
        the tasks) is cut into byte ranges ``path#bytes=S-E``; a line belongs to the range it starts in.

        Tasks are contiguous runs of the inputs in their given order (:func:`contiguous_plan`), not the
        base plan's largest-first packing: the interactive run breaks a tie in time by input order
        (then byte order), so the merge can break it by task only if task order is input order."""
        return contiguous_plan(split_into_ranges(inputs, max_tasks, SPLIT_BYTES), max_tasks)

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        """Exactly the result of one run over all the tasks' inputs: sessions cut by task boundaries are
        joined (:func:`merge_sessions`, on the sessions that can be cut only, the rest streamed through:
        :mod:`~aerofs_kernel.pipelines.session_stream`), unique visitors are the distinct (ip, user
        agent, day) of all tasks, top lists come from the summed per-value counts; request-level
        figures add up. The parts' tables may still be in their files (a job's: ``merge_job``); they
        are read batch by batch. With ``dst`` the sessions are written to ``sessions.parquet`` as they
        are merged and the result's table is read from it on first use; without, they are collected
        (the table is the result, as an interactive run without ``dst`` holds it). The result has no
        ``visitors`` table (only its count: the union is what the merge avoids holding)."""
        # The generic merge sums the figures; the tables are not its to concatenate (nor read).
        merged = super().merge([dataclasses.replace(p, tables={}) for p in parts], None, options)
        timeout = float(options.get("timeout_minutes", 30)) * 60
        by_ua = options.get("session_key", "ip_ua") != "ip"
        sources = [peek(p.tables, "sessions") for p in parts if "sessions" in p.tables]
        parquet = os.path.join(dst, "sessions.parquet") if dst else None
        sessions, figures, _ = session_stream.merge(sources, timeout, SessionJoin(timeout, by_ua), parquet)
        if sessions is not None:
            merged.tables = {"sessions": sessions}
        else:
            schema = sources[0].schema if sources else None  # the types the tasks' tables had
            merged.tables = lazy({}, "sessions", lambda: _sessions_file(merged, str(parquet)), schema)
        s = merged.summary
        # Files, not tasks: the byte ranges of one big log are one file (requests per file add up).
        per_file: dict[str, int] = {}
        for p in parts:
            for k, v in p.summary.get("per_file", {}).items():
                per_file[k] = per_file.get(k, 0) + v
        s["per_file"] = per_file
        s["files"] = len(per_file)
        s.update(figures.summary())
        visitors = [peek(p.tables, "visitors") for p in parts if "visitors" in p.tables]
        if visitors:
            s["unique_visitors"] = unique_visitors(visitors)
        counts = [p.tables["counts"] for p in parts if "counts" in p.tables]
        top = int(options.get("top", 10))
        if counts:
            c = pa.concat_tables(counts).group_by(["kind", "value"]).aggregate([("hits", "sum")])
            c = c.rename_columns(["kind", "value", "hits"])
            merged.tables["counts"] = c
            for kind, key in (
                ("page", "top_pages"),
                ("referrer", "top_referrers"),
                ("user_agent", "top_user_agents"),
            ):
                rows = c.filter(pc.equal(c.column("kind"), kind)).sort_by(
                    [("hits", "descending"), ("value", "ascending")]
                )
                s[key] = [{"value": r["value"], "hits": r["hits"]} for r in rows.slice(0, top).to_pylist()]
        hours = [0] * 24
        days: dict[str, int] = {}
        status: dict[str, int] = {}
        samples: list[Any] = []
        for p in parts:
            for i, h in enumerate(p.summary.get("hits_per_hour", [])):
                hours[i] += h
            for k, d in p.summary.get("hits_per_day", {}).items():
                days[k] = days.get(k, 0) + d
            for k, c2 in p.summary.get("status_codes", {}).items():
                status[k] = status.get(k, 0) + c2
            samples.extend(dict(x) for x in p.summary.get("unparsed_samples", []))
        ranges = [r for p in parts for r in p.parts.get(remote_ranges.PARTS_KEY, [])]
        merged.errors = [dict(e) for e in merged.errors]  # the parts' own dicts stay as they were
        remote_ranges.fix_lines(samples, "file", ranges)
        remote_ranges.fix_lines(merged.errors, "path", ranges)
        s.update(hits_per_hour=hours, hits_per_day=dict(sorted(days.items())),
                 status_codes=dict(sorted(status.items())),
                 unparsed_samples=samples[: int(options.get("unparsed_samples", 20))])  # fmt: skip
        if parquet is not None:
            merged.outputs = [parquet, *write_reports(str(dst), s)]
        return merged


register(LogSessions())
